//! The one verdict of a run, decided here and read by every output and the exit code.
//!
//! Order matters. A run whose target never let a connection through (or refused every
//! valid token with an auth status, or closed every one before accepting it with a code
//! the scenario does not declare: `verdict/door.rs`) says nothing about races: its
//! "violations" are the misconfiguration seen through the oracles, so those verdicts come
//! first; so does a run in which the server answered no request past its greeting
//! (`verdict/unanswered.rs`): its request path was never exercised. Then real
//! violations; then a plan that did not finish (its silence proves nothing); then tokens
//! that expired before their scripts ended (`oracle::expiry`: the scenario's own `ttl`),
//! connections that never ran their scripts, a race that was never exercised, or bad
//! tokens the server shed rather than judged (inconclusive); only then clean.
//!
//! Violations that are something else are read apart before they count as races: the
//! script misreading the server (`verdict/misreading.rs`: a kind, value or field it spells
//! or places otherwise), the server going away (`verdict/went_away.rs`: a restart's
//! closes), and answers that came after their deadline (`verdict/late.rs`).

use super::session::Coverage;
use crate::auth::Redactor;
use crate::model::{
    AcceptRule, Attempt, Cause, ClientStalls, ConnReport, Counters, Misread, OracleKind, Outcome,
    Placement, Plan, RejectSpec, Step, StopReason, Test, Verdict, Violation,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the verdict is decided from.
pub struct Evidence<'a> {
    pub plan: &'a Plan,
    pub reports: &'a [ConnReport],
    /// Violations by oracle, kept or not.
    pub by_oracle: &'a BTreeMap<OracleKind, u64>,
    pub coverage: &'a Coverage,
    pub stopped: StopReason,
    /// When the client process itself did not run.
    pub stalls: &'a ClientStalls,
    /// Every kept violation (connections' and the run's own).
    pub kept: &'a [Violation],
    /// The run's tokens, hidden in what the server said before a hint quotes it: the
    /// whole hint is redacted again at the end, but texts that differ only in the token
    /// each echoed (one per connection) must be told apart as shown, not as sent.
    pub redactor: &'a Redactor,
    /// The target URL as shown ([`crate::model::url::shown_url`]): where a hint says
    /// nothing took the TCP connection.
    pub target: &'a str,
    /// The tokens tried again after the run (the liveness probe; empty without it): whether
    /// the server still took connections then.
    pub probes: &'a [crate::model::Probe],
    /// The target is the built-in reference server with no planted bug (nor stall):
    /// correct by construction, so a miss every connection shares is the scenario's
    /// (`scripted`).
    pub correct_reference: bool,
}

/// The verdict and the one line that tells a user what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// `None` for a clean run.
    pub hint: Option<String>,
}

/// How the attempts of a run went, as the verdict needs them.
#[derive(Debug, Default)]
struct Tally {
    /// Attempts with an outcome (not aborted on purpose, not cut before an answer).
    judged: u64,
    /// Attempts that got a 101.
    upgraded: u64,
    accepted: u64,
    /// Attempts refused cleanly (a configured HTTP status or close code, or the declared
    /// refusal message).
    clean_refusals: u64,
    /// Forged-token attempts neither accepted nor refused cleanly (a reset, an unlisted
    /// status such as a 500): rejection hygiene's to judge, never what keeps every valid
    /// token refused from reading as a misconfiguration.
    forged_failed: u64,
    /// Valid-token attempts, and how many of them were accepted or refused cleanly.
    valid: u64,
    valid_accepted: u64,
    valid_refused: BTreeMap<Cause, u64>,
    /// Valid-token connections with at least one of those refusals: fewer than the
    /// refusals when a connection tried again (a `reconnect`), which the hint says.
    valid_refused_connections: u64,
    /// Of those refusals, the ones of a token an earlier attempt had already presented
    /// (an aborted handshake, a session): what a server that takes each token once says.
    valid_refused_again: u64,
    /// Failures that are the client's own limits, never the target's.
    client_side: u64,
    /// Attempts the server shed under load before doing any work
    /// ([`Attempt::shed_before_work`]).
    shed: u64,
    /// Attempts that presented a forged token (the bad-token catalogue, a time shift),
    /// and of those the ones the server shed before judging the token, by cause
    /// ([`bad_tokens_shed`]).
    forged: u64,
    forged_shed: BTreeMap<Cause, u64>,
    /// Of the forged-token attempts, those refused cleanly and those accepted (a clean
    /// run's are the server's lenient policy: a must-refuse one accepted breaks rejection
    /// hygiene), for a clean run's words ([`bad_tokens_words`]).
    forged_refused: u64,
    forged_accepted: u64,
    /// Bad tokens' attempts refused in the server's own words under the lenient policy
    /// (an unlisted status or close code that states a refusal), which `forged_refused`
    /// leaves out: refused, but not as the scenario declares.
    forged_own_words: u64,
    /// Every failure and refusal by cause, for the hint.
    causes: BTreeMap<Cause, u64>,
    /// The attempts counted in `shed` by cause, accepted ones (shed by a close after their
    /// 101) too, which `causes` leaves out: what a run shed throughout names.
    shed_causes: BTreeMap<Cause, u64>,
    /// Connections whose first broken handshake was about the subprotocol (the server
    /// chose none of those offered, or one not offered), for the hint.
    subprotocol: u64,
    /// Connections whose answer named a WebSocket extension ([`names_extension`]).
    extension: u64,
    /// Valid-token attempts that failed with no answer from the server (refused or reset
    /// TCP, a timed-out or broken upgrade, a failed login; not the client's own limits),
    /// by cause: what their scripts ask of the server was never asked ([`unserved`]).
    valid_failed: BTreeMap<Cause, u64>,
    /// Reconnects of a connection the server had accepted before, refused as "who are
    /// you" (a server that takes each token once): the steps after them never ran.
    reconnects_refused: u64,
    /// The first error event a valid token's connection got ([`ConnReport::first_error`]):
    /// under `accepted = "first_frame"` an error accepts nothing, so a server whose first
    /// words answer the requests with errors accepts none.
    first_error: Option<String>,
    /// What the first failed TLS handshake said (rustls's error, [`tls_check`]).
    tls_said: Option<String>,
}

/// What calibration met before the load, when the target accepted none of its valid-token
/// connections: said first, since what refused it (a wrong subprotocol, path, secret) is
/// what to fix before anything the load then saw; not a handshake only slower than
/// calibration waits, once the load's upgrades succeeded. With tokens from a source it presented
/// the run's own token, and a server may still hold what that attempt left. Not when the
/// load could not use the target for the very cause calibration names (a closed port, or
/// every token refused with 401, both times): the verdict already says it, and what to
/// check.
fn calibration_note(plan: &Plan, reports: &[ConnReport], verdict: Verdict) -> Option<String> {
    let why = plan.oracles.learned.unaccepted.as_deref()?;
    // A handshake slower than calibration's own bound, within the scenario's: once the
    // load's connections got through theirs, the server was only slower than calibration
    // waits, nothing to fix.
    let upgraded = || {
        reports
            .iter()
            .flat_map(|r| &r.attempts)
            .any(|a| a.upgraded_us.is_some())
    };
    if why.contains(super::learn::SLOWER_THAN_CALIBRATION) && upgraded() {
        return None;
    }
    let unused = matches!(
        verdict,
        Verdict::TargetUnusable | Verdict::AuthMisconfigured
    );
    // The cause as `NoneAccepted::what` puts it: alone in parentheses, or first, before
    // what calibration's own bound adds.
    let names = |c: &Cause| why.contains(&format!("({c})")) || why.contains(&format!("({c};"));
    if unused && only_cause(reports).is_some_and(names) {
        return None;
    }
    // Shed in calibration, served under load: a busy server, nothing to fix, only what
    // calibration would have learned is missing.
    let accepted = || {
        reports
            .iter()
            .flat_map(|r| &r.attempts)
            .any(|a| a.outcome == Outcome::Accepted)
    };
    let shed = format!("{})", super::learn::SHED_NOTE);
    if why.ends_with(&shed) && accepted() {
        return Some(format!(
            "before the load, {why}, so nothing was learned; the load's connections were \
             served, so only the learned oracles are missing (`stampede learn` when the \
             server is less busy)"
        ));
    }
    Some(format!(
        "before the load, {why}: fix that first (`stampede learn` tries it alone); what the \
         load saw may follow from it"
    ))
}

/// Decides the verdict (see the module doc for the order), with a note on what the
/// server did that is no violation (load it shed, placements it does not read), and on
/// closes that read as rate limiting the scenario does not declare as shedding, after the
/// hint.
pub fn judge(e: &Evidence<'_>) -> Judgement {
    let mut j = decide(e);
    // Said once: a run inconclusive for it already says it in its hint.
    let expired = super::expiry::note(e.plan, e.reports)
        .filter(|note| !j.hint.as_deref().is_some_and(|h| h.contains(note.as_str())));
    // A run turned away by its errors, or inconclusive for them, already says so in its
    // hint.
    let said = j
        .hint
        .as_deref()
        .is_some_and(|h| h.contains(misreading::ANSWERED_ALL_WITH_ERRORS));
    let errors = (j.verdict.exercised() && !said).then(|| errored_note(e.plan, e.reports));
    // The server went down mid-run ([`went_away`]): its 503s are the restart's.
    let restarting =
        j.verdict == Verdict::Inconclusive && went_away_judged(e).is_some_and(|w| w == j);
    let ping_missed = super::keepalive::unanswered_note(e.reports);
    let notes: Vec<String> = [
        calibration_note(e.plan, e.reports, j.verdict),
        restart_note(e.reports, restarting),
        shed_note(e.reports, e.coverage, restarting),
        shed_later_note(e.reports),
        super::shedding::undeclared_note(e.plan, e.reports),
        super::shedding::over_limit_note(e.plan, e.reports),
        super::refusal::undeclared_note(e.plan, e.reports),
        super::refusal::undeclared_status_note(e.plan, e.reports),
        super::takeover::replaced_note(e.reports),
        super::takeover::undeclared_note(e.plan, e.reports),
        super::session::per_token_note(e.plan),
        super::session::shared_credential_note(e.plan, e.kept),
        retried_note(e.reports),
        slow_reader_note(e.reports),
        closed_unaccepted_note(e.plan, e.reports),
        super::idle::closed_idle_note(e.plan, e.reports),
        ping_missed.clone(),
        // Closes that blame a missed ping read as a lifetime or idle policy only by their
        // timing: declaring one would excuse connections the client let die.
        // A server going down closes connections too: no policy to declare then.
        (ping_missed.is_none() && !restarting)
            .then(|| super::idle::undeclared_note(e.plan, e.reports))
            .flatten(),
        super::lifetime::closed_note(e.plan, e.reports),
        (ping_missed.is_none() && !restarting)
            .then(|| super::lifetime::undeclared_note(e.plan, e.reports))
            .flatten(),
        expired,
        unread_note(e.plan, e.reports),
        errors.flatten(),
        // Only a clean verdict claims the server did right; the others say what they saw.
        (j.verdict == Verdict::Clean)
            .then(|| unjudged::unjudged_run_note(e.plan, &sum_counters(e.reports)))
            .flatten(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !notes.is_empty() {
        let notes = notes.join("; ");
        j.hint = Some(match j.hint {
            Some(hint) => format!("{hint}; {notes}"),
            None => notes,
        });
    }
    // Said first: a protocol the scenario does not read explains what follows.
    if let (Some(note), Some(hint)) = (framing_note(e.plan, e.reports, e.target), j.hint.as_mut()) {
        *hint = format!("{note}; {hint}");
    }
    // So is a SignalR handshake sent without its terminator, when the run was not clean
    // and something was sent: refused at the upgrade, no handshake went out to be misread.
    let sent_any = e.reports.iter().any(|r| r.counters.messages_sent > 0);
    if j.verdict != Verdict::Clean && sent_any {
        if let (Some(note), Some(hint)) =
            (misreading::signalr_separator_note(e.plan), j.hint.as_mut())
        {
            *hint = format!("{note}; {hint}");
        }
    }
    // So is a login held for a server's challenge that never came, when the run was not
    // clean: no token reached the server on those attempts.
    if j.verdict != Verdict::Clean {
        if let (Some(note), Some(hint)) = (unsent_login_note(e.plan, e.reports), j.hint.as_mut()) {
            *hint = format!("{note}; {hint}");
        }
    }
    // So is a Phoenix serializer the URL does not ask for, whenever the run was not clean:
    // nothing read, or the server closing every connection on the first array frame
    // (1011 "bad frame"), which reads as a token refused otherwise.
    if j.verdict != Verdict::Clean {
        if let (Some(note), Some(hint)) = (
            misreading::phoenix_vsn_note(e.plan, e.target),
            j.hint.as_mut(),
        ) {
            *hint = format!("{note}; {hint}");
        }
    }
    j
}

/// The note on attempts whose in-band login waited for the server's challenge until they
/// ended ([`crate::model::Counters::logins_unsent`]): the kind `after` names never came
/// (a misspelled kind, a server that sends no challenge), so those attempts never
/// presented their token. `None` when every held login went out.
fn unsent_login_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let unsent: u64 = reports.iter().map(|r| r.counters.logins_unsent).sum();
    if unsent == 0 {
        return None;
    }
    let after = std::iter::once(&plan.auth.placement)
        .chain(plan.conns.iter().filter_map(|c| c.placement.as_ref()))
        .find_map(|p| match p {
            crate::model::Placement::FirstMessage {
                after: Some(kind), ..
            } => Some(kind.as_str()),
            _ => None,
        })?;
    Some(format!(
        "the first message waits for the server's {after:?} ([auth] placement's `after`), \
         which never came on {}: their login never went out, so the server never had their \
         token; check that kind against the server's challenge (or leave `after` out if the \
         server sends none)",
        crate::model::words::plural(unsent, "attempt")
    ))
}

/// A framing the scenario does not set, told by what the server said: the text it sent
/// before closing an attempt, and the first record the oracles could not read.
fn framing_note(plan: &Plan, reports: &[ConnReport], target: &str) -> Option<String> {
    use super::framing::{recognised_in, unset_note, written_for};
    if !plan.oracles.framing.is_plain() {
        return None;
    }
    let texts = reports.iter().flat_map(|r| {
        [
            r.said_before_close.as_deref(),
            r.counters.expect.unread_sample.as_deref(),
        ]
        .into_iter()
        .flatten()
    });
    let first_message = match &plan.auth.placement {
        crate::model::Placement::FirstMessage { template, .. } => Some(template),
        _ => None,
    };
    let sends = plan.scripts.iter().flat_map(|script| {
        crate::model::deep_steps(script).filter_map(|step| match step {
            crate::model::Step::Send { template } => Some(template),
            _ => None,
        })
    });
    let shape = || written_for(target, first_message.into_iter().chain(sends));
    unset_note(&plan.oracles, recognised_in(texts).or_else(shape))
}

/// The connections' counters added up.
fn sum_counters(reports: &[ConnReport]) -> crate::model::Counters {
    let mut sum = crate::model::Counters::default();
    for r in reports {
        sum.merge(&r.counters);
    }
    sum
}

/// Whether a shed attempt was refused by a server going down rather than shedding load:
/// an HTTP 503 (Service Unavailable: overloaded, or down for maintenance) in a run the
/// server restarted during (`restarting`, [`went_away`]). A 429 or a 1013 still says load.
fn refused_restarting(a: &Attempt, restarting: bool) -> bool {
    restarting && a.cause == Some(Cause::Http(503))
}

/// The note on HTTP 503s during a restart ([`refused_restarting`]): counted, and no load
/// shedding, though [`Attempt::is_shed`] counts them so. `None` when there were none.
fn restart_note(reports: &[ConnReport], restarting: bool) -> Option<String> {
    let mut attempts = 0u64;
    let mut refused = 0u64;
    for a in reports.iter().flat_map(|r| &r.attempts) {
        attempts += 1;
        refused += u64::from(a.is_shed() && refused_restarting(a, restarting));
    }
    (refused > 0).then(|| {
        format!(
            "the server refused {refused} of {attempts} attempt{} with HTTP 503 (service \
             unavailable) while it was going down or restarting: not load shedding; counted, \
             not violations",
            plural(attempts)
        )
    })
}

/// The note on load shedding: how many attempts the server shed ([`Attempt::is_shed`])
/// and how, when it shed any, and the collisions it took from a run the race was still
/// exercised in (an inconclusive run's hint says that itself). Counted, never a violation.
/// In a run the server restarted during (`restarting`), its 503s are the restart's
/// ([`restart_note`]), not shedding.
fn shed_note(reports: &[ConnReport], coverage: &Coverage, restarting: bool) -> Option<String> {
    let mut by: BTreeMap<Cause, u64> = BTreeMap::new();
    let mut attempts = 0u64;
    for a in reports.iter().flat_map(|r| &r.attempts) {
        attempts += 1;
        if let (true, false, Some(cause)) =
            (a.is_shed(), refused_restarting(a, restarting), &a.cause)
        {
            *by.entry(cause.clone()).or_default() += 1;
        }
    }
    let shed: u64 = by.values().sum();
    if shed == 0 {
        return None;
    }
    let took = if coverage.shed_tokens > 0 && !coverage.inconclusive() {
        format!(
            "; it took the collisions of {} of the {} shared tokens (exercised on {})",
            coverage.shed_tokens, coverage.shared_tokens, coverage.overlapping_tokens
        )
    } else {
        String::new()
    };
    Some(format!(
        "the server shed {shed} of {attempts} attempt{} under load ({}): counted, not \
         violations{took}",
        plural(attempts),
        top_causes(&by)
    ))
}

/// The inconclusive verdict of a run in which nothing broke but the server shed every
/// connection it accepted before its script ended (close 1013 or a `reject.shed` code
/// after acceptance, or its last reconnect shed before it was accepted again): what their
/// scripts had left was never asked, so the planned load
/// was not applied, and a clean verdict would pass a CI job that ran a fraction of it.
/// `None` when some accepted connection was never shed, or none was shed with an
/// expectation open.
fn shed_throughout(reports: &[ConnReport]) -> Option<Judgement> {
    let accepted: Vec<&ConnReport> = reports
        .iter()
        .filter(|r| r.attempts.iter().any(|a| a.outcome == Outcome::Accepted))
        .collect();
    // Its last attempt shed, once accepted or before (a reconnect the server shed, its
    // retries too): the connection ended shed, its script not done.
    let shed = |a: &Attempt| a.shed_after_acceptance() || a.is_shed();
    let ended_shed = |r: &&ConnReport| r.attempts.last().is_some_and(shed);
    if accepted.is_empty() || !accepted.iter().all(ended_shed) {
        return None;
    }
    let mut by: BTreeMap<Cause, u64> = BTreeMap::new();
    for a in accepted.iter().flat_map(|r| &r.attempts) {
        if let (true, Some(cause)) = (shed(a), &a.cause) {
            *by.entry(cause.clone()).or_default() += 1;
        }
    }
    let cut: u64 = accepted
        .iter()
        .map(|r| r.counters.expect.expectations_refused)
        .sum();
    // Shed with nothing open (in a final think, its expectations all met): nothing asked
    // was left unanswered for it.
    if cut == 0 {
        return None;
    }
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "the server shed every connection it accepted ({} of them: {}) before its script \
             ended: {cut} expectation{} they had left counted as refused, and what their \
             scripts had left was never asked, so the planned load was not applied; run at \
             a rate it takes (fewer users, a slower pace) or raise its limit",
            accepted.len(),
            top_causes(&by),
            plural(cut)
        )),
    })
}

/// The note on accepted connections the server shed later
/// ([`Attempt::shed_after_acceptance`]); `None` when it shed none.
fn shed_later_note(reports: &[ConnReport]) -> Option<String> {
    let later = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.shed_after_acceptance())
        .count() as u64;
    (later > 0).then(|| {
        format!(
            "the server shed {later} accepted connection{} under load (close 1013 or a \
             `reject.shed` code): what their scripts still expected is counted as refused, \
             not as violations",
            plural(later)
        )
    })
}

/// The note on requests the server answered with its error event, when some were (not
/// all: [`answered_only_errors`] judges that): allowed answers, never violations, but
/// under load they may be what the server does instead of serving, which a bare verdict
/// would hide; and when the whole answer of some came after their error all the same
/// ([`Counters::answered_after_error`]), that the error refused nothing.
/// Valid tokens' connections only (an error is a bad token's right answer).
fn errored_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let (mut errored, mut early, mut expectations, mut served) = (0u64, 0u64, 0u64, 0u64);
    // Of the early ones, those on connections the server never accepted: its refusal of
    // the connection, said in band before its Close, not an answer to a request.
    let mut refused = 0u64;
    let mut first: Option<&str> = None;
    // What their connections then waited for unasked and never got (see
    // `ExpectCounts::expectations_after_refusal`), left out as cut.
    let mut after = 0u64;
    for r in reports.iter().filter(|r| valid_token(plan, r.token)) {
        errored += r.counters.expect.expectations_errored;
        early += r.counters.expect.expectations_errored_early;
        if !r.attempts.iter().any(|a| a.outcome == Outcome::Accepted) {
            refused += r.counters.expect.expectations_errored_early;
        }
        // Those the run's end cut, or that needed what a refused request would have given,
        // are out of it, as out of the clean summary's count.
        let e = &r.counters.expect;
        expectations += e.expectations.saturating_sub(e.expectations_cut);
        served += r.counters.answered_after_error;
        after += r.counters.expectations_after_refusal;
        first = first.or(r.first_error.as_deref());
    }
    (errored > 0).then(|| {
        let quoted = first.map_or(String::new(), |e| format!("; the first: {e}"));
        let early_count = early;
        let early = match early {
            0 => String::new(),
            _ if refused == errored => ", every one on a connection the server never \
                                        accepted (its refusal in band, not an answer to a \
                                        request)"
                .to_string(),
            n if n == errored => ", every one a request sent before the server had accepted \
                                  its connection (refused as too early: allowed, not a drop)"
                .to_string(),
            n => format!(
                ", {n} of them requests sent before the server had accepted their connection"
            ),
        };
        // Under the first-frame rule an error is no acceptance: a server that accepts at
        // the upgrade and rate-limits the first requests reads as never accepting those
        // connections (counted failed), which one word of the scenario's fixes.
        // Only where some connection never got past those errors: one a greeting then
        // accepted was accepted in the first frame's sense after all.
        let early = if early_count > 0
            && refused > 0
            && plan.oracles.session.accepted == crate::model::AcceptRule::FirstFrame
        {
            format!(
                "{early} (under `accepted = \"first_frame\"` a connection whose first words \
                 are errors is not accepted: if the server accepts at the upgrade and these \
                 errors answer its requests, a rate limit say, declare `[oracles] accepted = \
                 \"upgrade\"`)"
            )
        } else {
            early
        };
        // The error settled each of them, but a request whose whole answer followed its
        // error was served: said, since the error alone reads as a refusal.
        let served = match served {
            0 => String::new(),
            n if n == errored => ", and then sent the whole answer to every one of those \
                                  requests all the same: its error event does not mean the \
                                  request was refused"
                .to_string(),
            n => format!(
                ", and then sent the whole answer to {n} of those requests all the same: its \
                 error event does not always mean the request was refused"
            ),
        };
        let after = match after {
            0 => String::new(),
            n => format!(
                "; {n} expectation{} of what the server sends unasked (no `correlate`), \
                 waited for after a refused request on {}, got nothing and {} not judged: \
                 not owed after the refusal (as a room's events after the join was turned away); \
                 one opened before the refusal or after a later request is judged",
                plural(n),
                if n == 1 {
                    "its connection"
                } else {
                    "their connections"
                },
                if n == 1 { "is" } else { "are" },
            ),
        };
        format!(
            "the server answered {errored} of {expectations} expectation{} with its error \
             event{early} (counted, not violations{quoted}){served}{after}",
            plural(expectations)
        )
    })
}

/// How the attempts of a run that `keep` holds for ended, by cause (each counted once,
/// an attempt with no cause left out): what a note on them lists.
pub(super) fn causes_of(
    reports: &[ConnReport],
    keep: impl Fn(&Attempt) -> bool,
) -> BTreeMap<Cause, u64> {
    let mut by: BTreeMap<Cause, u64> = BTreeMap::new();
    for a in reports.iter().flat_map(|r| &r.attempts).filter(|a| keep(a)) {
        if let Some(cause) = &a.cause {
            *by.entry(cause.clone()).or_default() += 1;
        }
    }
    by
}

/// The note on accepted connections the server closed as their scripts' `pause_reads`
/// ended ([`crate::model::Attempt::closed_slow_reader`]): how many, and with which codes.
/// `None` when there were none.
fn slow_reader_note(reports: &[ConnReport]) -> Option<String> {
    let by = causes_of(reports, |a| a.closed_slow_reader);
    let n: u64 = by.values().sum();
    (n > 0).then(|| {
        format!(
            "the server closed {n} connection{} as {} scripts stopped pausing their reads \
             ({}): its way with a slow reader, which `pause_reads` tests (backpressure), so \
             what they still expected is counted as refused, not as lost",
            plural(n),
            if n == 1 { "its" } else { "their" },
            top_causes(&by)
        )
    })
}

/// Whether the script closed attempt `a` itself while `[oracles] accepted` still waited,
/// though the server had sent data frames on it: it answered, only not in the way the
/// acceptance rule names.
fn closed_unaccepted(a: &Attempt) -> bool {
    a.outcome == Outcome::Failed
        && matches!(a.cause, Some(Cause::ClientClose(_)))
        && a.last_frame_us.is_some()
}

/// The note on valid-token attempts the scripts closed before the server sent what
/// `[oracles] accepted = { message = ... }` waits for, though it spoke on them
/// ([`closed_unaccepted`]): the session oracles did not count them as accepted. A server
/// that greets a resumed session another way (`session_resumed` instead of `hello`)
/// answers so. `None` when there were none, or when no attempt was accepted (the verdict
/// then says so itself).
fn closed_unaccepted_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let crate::model::AcceptRule::Message { event } = &plan.oracles.session.accepted else {
        return None;
    };
    let attempts = || {
        reports
            .iter()
            .filter(|r| valid_token(plan, r.token))
            .flat_map(|r| &r.attempts)
    };
    let n = attempts().filter(|a| closed_unaccepted(a)).count() as u64;
    if n == 0 || !attempts().any(|a| a.outcome == Outcome::Accepted) {
        return None;
    }
    // What the server said last on one of them (the answer line's), when it reads whole:
    // the other welcome to accept, or its refusal in band.
    let said = reports
        .iter()
        .filter_map(|r| r.answer.as_ref())
        .filter(|a| matches!(a.cause, Cause::ClientClose(_)))
        .filter_map(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
        .find_map(|v| {
            let kind = super::frame::kind_of(&plan.oracles, &v).map(|k| k.into_owned())?;
            Some((kind, v))
        });
    if let Some((kind, body)) = said
        .as_ref()
        .filter(|(k, _)| *k == plan.oracles.error_event)
    {
        return Some(refused_in_band_note(plan, n, kind, body));
    }
    let other = said
        .map(|(k, _)| k)
        .filter(|k| k != event)
        .unwrap_or_else(|| "OTHER".to_string());
    Some(format!(
        "the scripts closed {n} valid-token attempt{} before the server sent {event:?}, \
         what `[oracles] accepted` waits for, though it answered on them: not counted as \
         accepted, so exclusivity and liveness did not judge them; if the server greets \
         some connections with another kind (a resumed session's), declare a kind in \
         `[oracles.kinds]` that matches both (`welcome = {{ {field} = {{ matches = \
         \"^({}|{})$\" }} }}`) and accept that",
        plural(n),
        regex::escape(event),
        regex::escape(&other),
        field = door::toml_key(&plan.oracles.type_field),
    ))
}

/// [`closed_unaccepted_note`] when what the server said last on those attempts is its
/// error event (`body`, of kind `kind`): its refusal of the connection in band, on a
/// socket it left open, which `reject.message` declares (a kind of its own in
/// `[oracles.kinds]`, from the error's type and code). Accepting it as a welcome would read
/// the refusals as sessions.
fn refused_in_band_note(plan: &Plan, n: u64, kind: &str, body: &serde_json::Value) -> String {
    let field = door::toml_key(&plan.oracles.type_field);
    let code = ["code", "reason", "error"]
        .iter()
        .find_map(|k| body.get(*k).and_then(|v| v.as_str()).map(|v| (*k, v)))
        .map_or(String::new(), |(k, v)| format!(", {k} = {v:?}"));
    format!(
        "the scripts closed {n} valid-token attempt{} after the server answered them with \
         its error event, before it accepted them: its refusal of those connections in band, \
         if so, is declared by a kind and `reject.message` (`[oracles.kinds] refused = {{ \
         {field} = {kind:?}{code} }}` and `[oracles] reject = {{ message = \"refused\" }}`), \
         and then judged as a refusal",
        plural(n),
    )
}

/// The note on valid-token attempts the server closed before accepting them right after
/// a message (`said_before_close`), when the scenario declares no `reject.message`: that
/// message may be the server's refusal in band (subscriptions-transport-ws's
/// `connection_error`, then Close 1011), which, undeclared, reads as violations of the
/// refused connections' scripts and of rejection hygiene. Names the message's kind and
/// the declaration. `None` when there is none, or a refusal message is declared.
fn undeclared_in_band_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    if plan.oracles.session.reject.message.is_some() {
        return None;
    }
    let closed = |r: &&ConnReport| {
        r.attempts.iter().any(|a| {
            a.outcome == Outcome::Failed
                && matches!(
                    a.cause,
                    Some(Cause::ServerClose(_) | Cause::InvalidClose(_))
                )
        })
    };
    let said: Vec<&ConnReport> = reports
        .iter()
        .filter(|r| valid_token(plan, r.token) && r.said_before_close.is_some())
        .filter(closed)
        .collect();
    let first = said.first()?.said_before_close.as_deref()?;
    let kind = serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .and_then(|v| super::frame::kind_of(&plan.oracles, &v).map(|k| k.into_owned()));
    // `reject.message` names a kind `[oracles.kinds]` declares: one the scenario has, or
    // a rule on the type field to add beside it.
    let declare = match kind {
        Some(kind) if plan.oracles.kinds.iter().any(|k| k.name == kind) => {
            format!("`[oracles] reject = {{ message = {kind:?} }}`")
        }
        Some(kind) => format!(
            "`[oracles.kinds] refused = {{ {} = {} }}` and `[oracles] reject = {{ message = \
             \"refused\" }}`",
            door::toml_key(&plan.oracles.type_field),
            serde_json::Value::from(kind)
        ),
        None => "a kind for it in `[oracles.kinds]` and `[oracles] reject = { message = \
                 \"KIND\" }`"
            .to_string(),
    };
    Some(format!(
        "the server closed {} valid-token connection{} before accepting {} right after \
         saying {first}: if that is how it refuses a connection in band, declare it ({declare}) \
         and those refusals are judged as refusals, not as the scripts' losses",
        said.len(),
        plural(said.len() as u64),
        if said.len() == 1 { "it" } else { "them" },
    ))
}

/// The attempts of the valid tokens' connections, by token slot.
fn valid_attempts_by_token<'r>(
    plan: &Plan,
    reports: &'r [ConnReport],
) -> BTreeMap<u32, Vec<&'r Attempt>> {
    let mut by_token: BTreeMap<u32, Vec<&Attempt>> = BTreeMap::new();
    for r in reports.iter().filter(|r| valid_token(plan, r.token)) {
        by_token.entry(r.token).or_default().extend(&r.attempts);
    }
    by_token
}

/// The note on exclusivity violations of a server that never turned a valid token away:
/// every attempt of every valid token was accepted, however many of one token were live,
/// and exclusivity is all that broke. A server that lets one token hold several sessions
/// by design (a stateless JWT checked by signature alone, geth's engine API) shows exactly
/// this, and the scenario can state it; a check-then-act race shows refusals beside the
/// doubles. `None` otherwise.
fn no_limit_note(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<String> {
    let max_live = plan.oracles.session.max_live?;
    let exclusivity = by_oracle.get(&OracleKind::Exclusivity).copied()?;
    if by_oracle.values().sum::<u64>() != exclusivity {
        return None;
    }
    let by_token = valid_attempts_by_token(plan, reports);
    let attempts = || by_token.values().flatten();
    if !attempts().all(|a| a.outcome == Outcome::Accepted) {
        return None;
    }
    // The most sessions of one token live at once: at each acceptance, those accepted by
    // then and not yet ended.
    let most = by_token
        .values()
        .flat_map(|attempts| {
            attempts.iter().filter_map(|a| a.accepted_us).map(|at| {
                attempts
                    .iter()
                    .filter(|o| {
                        o.accepted_us.is_some_and(|t| t <= at) && o.ended_us.is_none_or(|e| e > at)
                    })
                    .count() as u32
            })
        })
        .max()
        .unwrap_or(0);
    if most <= max_live {
        return None;
    }
    // A token's connections that all began within a handshake race of each other: a
    // check-then-act race whose every check came before any session was added turns
    // none of them away either.
    // The widest spread of starts among the tokens whose connections all began that close.
    let together = by_token
        .values()
        .filter(|attempts| attempts.len() as u32 > max_live)
        .filter_map(|attempts| {
            let starts = attempts.iter().map(|a| a.started_us);
            let spread = starts.clone().max()? - starts.min()?;
            (spread <= TOGETHER_US).then_some(spread)
        })
        .max();
    let caveat = match together {
        Some(spread) => format!(
            "; but here a token's connections all began within {} ms of each other, inside \
             the window of a handshake race, and a check-then-act race whose every check came \
             before any session was added turns none away either: open one token's \
             connections more than {} ms apart (a longer `ramp`) to tell the two apart \
             before declaring {{ max_live = {most} }}",
            spread.div_ceil(1_000).max(1),
            TOGETHER_US / 1_000
        ),
        None => format!(
            ". If it is its policy, say so ([oracles] exclusive = false, or {{ max_live = \
             {most} }})"
        ),
    };
    Some(format!(
        "the server accepted all {} connections of the run's {} token{}, up to {most} of one \
         token at once, and turned none away: a server that lets one token hold several \
         sessions by design (a stateless JWT) does exactly this, where a check-then-act race \
         with its checks spread out turns some away too{caveat}",
        attempts().count(),
        by_token.len(),
        plural(by_token.len() as u64),
    ))
}

/// How close together, µs, a token's connections must all begin to count as arriving at
/// once for [`no_limit_note`]: within a handshake race of each other (a few ms at most).
const TOGETHER_US: u64 = 50_000;

/// The note on exclusivity violations of a server that holds a cap of its own: on every
/// token that broke exclusivity it served at most `K` connections at once (more than the
/// scenario's `max_live`), the same `K` everywhere, and turned away one that came while
/// `K` were live. That reads as a per-token connection limit by design (Slack's
/// `too_many_websockets`), which the scenario can state. `None` otherwise.
fn cap_note(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<String> {
    let declared = plan.oracles.session.max_live?;
    if !by_oracle.contains_key(&OracleKind::Exclusivity) {
        return None;
    }
    let by_token = valid_attempts_by_token(plan, reports);
    let live_at = super::session::live_as_it_started;
    let mut cap = None;
    for attempts in by_token.values() {
        let most = attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Accepted)
            .map(|a| live_at(attempts, a) + 1)
            .max()
            .unwrap_or(0);
        if most <= declared {
            continue;
        }
        let turned_away = attempts.iter().any(|a| {
            a.outcome != Outcome::Accepted
                && a.upgraded_us.is_some()
                && live_at(attempts, a) >= most
        });
        if !turned_away || cap.is_some_and(|k| k != most) {
            return None;
        }
        cap = Some(most);
    }
    let k = cap?;
    Some(format!(
        "the server served at most {k} connections of a token at once, never more, and \
         turned away those that came while {k} were live: if it allows {k} per token by \
         design, declare `[oracles] exclusive = {{ max_live = {k} }}`"
    ))
}

/// The note on attempts that failed or were refused before acceptance and that a
/// `reconnect`'s `backoff` tried again ([`Attempt::retried`]): how many, and how they
/// ended. `None` when there were none.
///
/// [`Attempt::retried`]: crate::model::Attempt::retried
fn retried_note(reports: &[ConnReport]) -> Option<String> {
    let by = causes_of(reports, |a| a.retried);
    let retried: u64 = by.values().sum();
    (retried > 0).then(|| {
        format!(
            "{retried} attempt{} not accepted ({}) {} tried again by the `reconnect` \
             backoff, which carried the scripts on: what {} scripts still expected is \
             counted as refused (liveness still judges a valid token refused while no \
             session held it)",
            plural(retried),
            top_causes(&by),
            if retried == 1 { "was" } else { "were" },
            if retried == 1 { "its" } else { "their" },
        )
    })
}

/// The note on placements the server does not read tokens from
/// ([`super::session::unread_placements`]).
fn unread_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let unread = super::session::unread_placements(plan, reports);
    (!unread.is_empty()).then(|| {
        unread
            .iter()
            .map(|p| {
                format!(
                    "the server does not read tokens from {p}: every valid token sent there \
                     was refused (those connections are left out of liveness and consistency)"
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn decide(e: &Evidence<'_>) -> Judgement {
    if let Some(j) = empty_shard(e) {
        return j;
    }
    let t = tally(e.plan, e.reports);
    let violations: u64 = e.by_oracle.values().sum();
    let opaque = e.plan.auth.tokens.as_ref().map(|s| s.kind());
    if let Some(j) = door::refused_at_door(e.plan, e.reports, opaque, e.redactor) {
        return j;
    }
    if let Some(j) = unreadable_welcome(e.plan, e.reports, &t, e.redactor)
        .or_else(|| unmet_welcome(e.plan, e.reports, &t))
    {
        return j;
    }
    let reject = &e.plan.oracles.session.reject;
    let no_token = matches!(e.plan.auth.placement, Placement::None);
    if let Some(mut j) =
        unusable(reject, &t, e.target).or_else(|| misconfigured(&t, opaque, no_token))
    {
        // With no token on the wire, `misconfigured` already points at the script's sends.
        if let (Verdict::AuthMisconfigured, Some(hint), false) =
            (j.verdict, j.hint.as_mut(), no_token)
        {
            if upgrade_carries_no_token(e.plan, &t) {
                // The tokens never reached the server: the placement is the likeliest
                // cause, said first; the signing material only if it does read them later.
                *hint = format!(
                    "{UPGRADE_REFUSED_WITHOUT_TOKEN} ({}): a server that reads the token on \
                     the upgrade refuses it there as missing, whatever it was signed with; set \
                     `[auth] placement` to the header, query, subprotocol or cookie it reads \
                     (if it does read the first message, {})",
                    refusals_text(&t),
                    auth_check(opaque)
                );
            } else if let Some(note) = uncommon_placement_note(e.plan) {
                hint.push_str(&note);
            } else if let Some(note) = usual_placement_note(e.plan) {
                hint.push_str(&note);
            }
        }
        return j;
    }
    if let Some(j) = unreadable(e.plan, e.reports, e.by_oracle, e.redactor) {
        return j;
    }
    if let Some(j) = unmet_over_unread(
        e.plan,
        e.reports,
        e.by_oracle,
        &e.plan.oracles.type_field,
        e.redactor,
    ) {
        return j;
    }
    if let Some(j) = capture_never_found(e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = misread(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = answered_otherwise_everywhere(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = broke_the_protocol(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = identity_misnamed(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = sequence_per_misnamed(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = closed_on_request(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = value_slip(e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = said_no_everywhere(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = went_away_judged(e) {
        return j;
    }
    if let Some(j) = went_down(e.reports, e.by_oracle, e.probes) {
        return j;
    }
    if let Some(j) = misreading::refused_step_then_closed(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = answered_only_errors(e.plan, e.reports, opaque) {
        return j;
    }
    if let Some(j) = unanswered::ignored_requests(e.plan, e.reports, e.by_oracle) {
        return j;
    }
    if let Some(j) = stalled(e.kept, violations, e.stalls) {
        return j;
    }
    if let Some(j) = overflowed(e.plan, e.reports, e.kept, violations) {
        return j;
    }
    if let Some(j) = oversized(e.plan, e.reports, e.kept, violations) {
        return j;
    }
    // Only against the correct reference server: elsewhere a miss every connection shares
    // may be a race whose window every connection fell into (a message sent before the
    // server finished its handshake, every time).
    if e.correct_reference {
        if let Some(miss) = scripted::same_miss_everywhere(e.plan, e.reports, e.by_oracle, e.kept) {
            return scripted::against_the_reference(&miss);
        }
        if let Some(j) = scripted::unmet_against_the_reference(e.by_oracle, e.kept) {
            return j;
        }
    }
    if let Some(mut j) = door::forged_refused_in_band(e.plan, e.reports, e.by_oracle, e.kept) {
        // Sends nothing judged and nothing answered say so too.
        let silent = unjudged::silent_after_unjudged(e.plan, &sum_counters(e.reports));
        if let (Some(hint), Some(silent)) = (j.hint.as_mut(), silent) {
            hint.push_str("; ");
            hint.push_str(&silent);
        }
        return j;
    }
    if violations > 0 && super::idle::explains_every_violation(e.plan, e.reports, e.kept) {
        // Closed for a heartbeat the client owed (the close's reason says so): the client
        // let them die, no race and no idle policy to declare.
        if let Some(note) = crate::oracle::keepalive::unanswered_note(e.reports) {
            return Judgement {
                verdict: Verdict::Inconclusive,
                hint: Some(format!(
                    "every violation is on a connection the server closed for a missed \
                     heartbeat, after a silence of the script's: the client owes the beat, so \
                     these are no race, and what the scripts had left was never asked; {note}"
                )),
            };
        }
    }
    if violations > 0 {
        let mut hint = violations_hint(e.by_oracle, e.kept, e.reports);
        // Set when the hint already says the server stopped reading every connection.
        let mut stopped_everywhere = false;
        if let Some(before) = hint.strip_suffix(HUNT) {
            if let Some((n, fault)) = same_fault_everywhere(e.plan, e.reports, e.by_oracle) {
                // The witnesses name the fault: what to fix comes first. Every connection of
                // this run is not every run (a fault only under load is a race too), so the
                // repro stays the way to tell.
                hint = format!(
                    "{before}; every one was cut by the server breaking the WebSocket protocol \
                     on every connection it accepted ({n}), the same way each time ({fault}): \
                     fix what the server sends there; whether one connection alone meets it \
                     or it takes this load, a repro shows (hunt, then shrink)"
                );
            } else if let Some(n) = stopped_reading_everywhere(e.plan, e.reports, e.by_oracle) {
                stopped_everywhere = true;
                // Not "a plan too long": what was seen is writes that could not go out, on
                // every connection.
                hint = format!(
                    "{before}; every one was on a connection the server stopped reading, on \
                     every connection it accepted ({n}): what the client wrote (its requests, \
                     the pongs the server's pings are owed) piled up unsent until the \
                     connection ended (timeout_send), so what it waited for was never asked: \
                     see why the server stops reading (its log), or what it waits for that the \
                     script does not send; whether it takes this load, a repro shows (hunt, \
                     then shrink)"
                );
            } else if super::idle::explains_every_violation(e.plan, e.reports, e.kept) {
                // The server's own word may be its policy: what to declare comes first
                // (the idle note below says it), the hunt only if it is no policy.
                hint = format!(
                    "{before}; every one is on a connection the server closed after a silence, \
                     as an idle timeout does (see below): declare it if that is the server's \
                     policy; if not, hunt for a repro"
                );
            } else if rate_limiting_may_explain(e) {
                hint = format!(
                    "{before}; they may be rate limiting, which a repro would only show again: \
                     see below before hunting"
                );
            } else if limit_may_explain(e) {
                hint = format!(
                    "{before}; they are the connections the server refused over the declared \
                     exclusivity limit, which a repro would only show again: see below before \
                     hunting"
                );
            }
        }
        if let Some(note) = learned_only_note(e.reports, e.by_oracle) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = caught_up_note(e.kept, e.stalls) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = undeclared_in_band_note(e.plan, e.reports) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = never_arrived_note(e.reports, e.kept) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = stopped_reading_note(e.reports, e.kept).filter(|_| !stopped_everywhere)
        {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = cap_note(e.plan, e.reports, e.by_oracle) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        if let Some(note) = no_limit_note(e.plan, e.reports, e.by_oracle) {
            hint.push_str("; ");
            hint.push_str(&note);
        }
        return Judgement {
            verdict: Verdict::Violations,
            hint: Some(hint),
        };
    }
    if e.stopped != StopReason::Completed {
        let hint = match unanswered_upgrades(e.reports) {
            // Too short to be the target's: no server answers an upgrade within a few
            // hundred microseconds of a burst, and a healthy one answers in milliseconds.
            Some(cut)
                if e.stopped == StopReason::Duration
                    && e.plan.duration < UPGRADE_ANSWERED_WITHIN =>
            {
                format!(
                    "the duration ({:?}) ran out before any upgrade could be answered ({cut} cut \
                     waiting for the 101): too short to say anything of the target; raise \
                     `duration` (a healthy server answers an upgrade within milliseconds)",
                    e.plan.duration
                )
            }
            Some(cut) if e.stopped == StopReason::Duration => format!(
                "no connection got an answer to its upgrade before the duration ran out ({cut} \
                 cut waiting for the 101): the target takes TCP connections but answered no \
                 WebSocket upgrade within the run. Check the URL's path and that it speaks \
                 WebSocket, or raise `duration` past [limits] handshake_timeout ({:?}) to see \
                 it time out",
                e.plan.limits.handshake_timeout
            ),
            _ if e.stopped == StopReason::Interrupted && e.reports.is_empty() => {
                // No file is named: this run may have written none (`--no-learn`,
                // `--no-results`, a `--workers` merge); the run says where one is.
                "interrupted before the load started: nothing was exercised".into()
            }
            _ => incomplete_hint(e.stopped),
        };
        return Judgement {
            verdict: Verdict::Incomplete,
            hint: Some(hint),
        };
    }
    if let Some(j) = token_expired(e.plan, e.reports, &t) {
        return j;
    }
    if let Some(j) = unreached::cut_before_reaching(e.plan, e.reports) {
        return j;
    }
    if let Some(j) = went_down_after_all(e.reports, e.probes) {
        return j;
    }
    if let Some(j) = unserved(&t) {
        return j;
    }
    if let Some(j) = bad_tokens_shed(&t) {
        return j;
    }
    if e.coverage.inconclusive() {
        let hint = if let Some(hint) = shed_coverage_hint(e.coverage) {
            hint
        } else if e.coverage.overlapping_tokens == 0 {
            format!(
                "none of the {} shared tokens had two handshakes in flight at once: the race \
                 was never exercised (try arrival = \"collide\" or less jitter)",
                e.coverage.shared_tokens
            )
        } else {
            format!(
                "{} shared tokens had connections accepted together, but none of them got a \
                 frame after the other's acceptance and the server let none go: whether it \
                 served both cannot be told (add an exchange after the first, e.g. a second \
                 request after a short think)",
                e.coverage.overlapping_tokens
            )
        };
        return Judgement {
            verdict: Verdict::Inconclusive,
            hint: Some(hint),
        };
    }
    if let Some(short) = client_short(e.reports) {
        return short;
    }
    if let Some(j) = unexercised_sends(e, &t) {
        return j;
    }
    if let Some(j) = shed_throughout(e.reports) {
        return j;
    }
    if let Some(j) = nothing_accepted(&t) {
        return j;
    }
    if let Some(j) = no_bad_token_answered(&t) {
        return j;
    }
    if let Some(j) = misreading::refused_step(e.plan, e.reports) {
        return j;
    }
    if let Some(j) = misreading::sequence_misnamed(e.plan, e.reports) {
        return j;
    }
    let broken = e
        .plan
        .oracles
        .learned
        .sequence_broken
        .iter()
        .map(|(field, held, of)| {
            format!(
                "calibration saw {field} go up by one on {held} of {of} connections and skip or \
             go back on the others, so it was not learned nor judged: if it counts per \
             connection, declare [oracles] sequence = {{ field = {field:?} }} to judge it"
            )
        });
    let notes: Vec<String> = unanswered_hint(e.reports)
        .into_iter()
        .chain(broken)
        .collect();
    // Oracles the scenario declared that had nothing to judge: said beside "no oracle
    // broke", which would otherwise claim them.
    let unexercised: Vec<String> = [
        unshared_note(e.plan, e.coverage),
        identity_unseen_note(e.plan, e.reports),
        sequence_unseen_note(e.plan, e.reports),
        forbidden_before_note(e.reports),
        unread_frames_note(e.reports),
    ]
    .into_iter()
    .flatten()
    .collect();
    let unshared = (!unexercised.is_empty()).then(|| unexercised.join("; "));
    // What the bad tokens met is what a scenario of them is for: said beside the
    // expectations, which only the valid tokens' connections had.
    let summary = match bad_tokens_words(&t) {
        Some(bad) => format!("{}; {bad}", clean_summary(e.reports)),
        None => clean_summary(e.reports),
    };
    Judgement {
        verdict: Verdict::Clean,
        hint: Some(match (notes.is_empty(), unshared) {
            (true, None) => summary,
            (true, Some(unshared)) => format!("{summary}; {unshared}"),
            (false, _) => notes.join("; "),
        }),
    }
}

/// No valid-token attempt was accepted, though the rules above found nothing to say of
/// it (some refused, the rest closed by their scripts before the server accepted them):
/// no script ran against a served connection, so the run proves nothing of the server.
/// Never clean: a run that never exercised its target passes no CI gate.
fn nothing_accepted(t: &Tally) -> Option<Judgement> {
    if t.valid == 0 || t.valid_accepted > 0 {
        return None;
    }
    let refused: u64 = t.valid_refused.values().sum();
    let refused = if refused > 0 {
        format!(" ({refused} refused by the server)")
    } else {
        String::new()
    };
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "none of the {} valid-token connection attempts was accepted{refused}, so no \
             script ran on a connection the server served and this run proves nothing of \
             it: check `[oracles] accepted` against what the server sends when it accepts \
             (the answer lines quote its last messages)",
            t.valid
        )),
    })
}

/// A run of bad tokens alone (the catalogue, no valid token) in which the server answered
/// none of them: not refused, not accepted, not shed, in no words of its own (each attempt
/// ended by the script's own wait, or the run's end): rejection hygiene judged nothing, so
/// the run is no pass. `None` when some bad token got the server's answer, or a valid
/// token was presented (the rules before judge those runs).
fn no_bad_token_answered(t: &Tally) -> Option<Judgement> {
    let answered = t.forged_refused
        + t.forged_accepted
        + t.forged_own_words
        + t.forged_shed.values().sum::<u64>();
    if t.valid > 0 || t.forged == 0 || answered > 0 {
        return None;
    }
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "the server answered none of the {} within the script's wait (none refused, none \
             accepted), so rejection hygiene judged nothing and this run proves nothing of \
             it: give the server longer (`within` of the first `expect`), or check that it \
             reads the token where the scenario puts it",
            crate::model::words::plural(t.forged, "bad-token attempt")
        )),
    })
}

/// A clean run's note when exclusivity is on and no token (or user, as sessions are kept)
/// was presented by two connections: the token race had nothing to be judged on, which
/// "no oracle broke" would otherwise claim. `None` when some were shared, or exclusivity
/// is off.
fn unshared_note(plan: &Plan, coverage: &Coverage) -> Option<String> {
    let (shared, one) = match plan.oracles.session.per {
        crate::model::SessionKey::Token => ("shared a token", "token"),
        crate::model::SessionKey::User => ("were one user's", "user"),
    };
    let max_live = plan.oracles.session.max_live?;
    (coverage.shared_tokens == 0).then(|| {
        format!(
            "exclusivity not exercised: no two connections {shared} (`token = {{ share = 2 \
             }}` shares them, to judge at most {max_live} live per {one}; a server that \
             allows more declares `exclusive = false` or its `max_live` first)"
        )
    })
}

/// [`unshared_note`] of a plan as written, before any run: the note a hunt whose rounds
/// were all clean gives, since no round of the scenario's shape could share a token.
pub fn exclusivity_unexercised_note(plan: &Plan) -> Option<String> {
    unshared_note(plan, &super::session::coverage(plan, &[]))
}

/// A clean run's note when the server also sent frames no oracle could read (text that
/// is not JSON, binary frames): they break no oracle by themselves (a protocol's binary
/// heartbeat is no fault), but "no oracle broke" should not pass over them unsaid.
/// `None` when there were none.
fn unread_frames_note(reports: &[ConnReport]) -> Option<String> {
    let (text, binary) = reports.iter().fold((0u64, 0u64), |(t, b), r| {
        (t + r.counters.non_json, b + r.counters.binary_frames)
    });
    let mut kinds = Vec::new();
    if text > 0 {
        kinds.push(format!("{text} non-JSON text"));
    }
    if binary > 0 {
        kinds.push(format!("{binary} binary"));
    }
    (!kinds.is_empty()).then(|| {
        format!(
            "the server also sent {} frames no oracle could read ({}: under `findings`), \
             which break none by themselves; an `unread_frames = \"== 0\"` threshold fails \
             a run on them",
            text + binary,
            kinds.join(", ")
        )
    })
}

/// A clean run's note on records of kinds an uncorrelated `expect_none` forbids that came
/// after the request before it, but before it opened ([`ConnReport::forbidden_before`]):
/// unjudged, for such an absence counts from where it opens, so a server that sends the
/// forbidden record before the ack the script waits for first reads clean. `None` when
/// there were none.
fn forbidden_before_note(reports: &[ConnReport]) -> Option<String> {
    let (n, kind) = reports.iter().fold((0u64, None), |(n, kind), r| {
        (
            n + r.forbidden_before.0,
            kind.or(r.forbidden_before.1.as_deref()),
        )
    });
    (n > 0).then(|| {
        format!(
            "{} of a kind an `expect_none` forbids ({}) came after the request before it but \
             before it opened, while an earlier step waited (an ack): unjudged, for an \
             uncorrelated `expect_none` counts from where it opens; to judge them, put it \
             right after the send with `wait = false`, or correlate it with the request",
            crate::model::words::plural(n, "record"),
            kind.unwrap_or_default()
        )
    })
}

/// A clean run's note when the scenario declares an `[oracles] identity` field and no
/// record of the run carried it (a misspelled path: `payload.data.ticks.usr`): the
/// identity oracle judged nothing. `None` when some record held it, or none is declared.
fn identity_unseen_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let field = plan.oracles.identity.as_deref()?;
    (sum_counters(reports).expect.identity_matched == 0).then(|| {
        format!(
            "identity not exercised: no record carried its field {field:?} (check `[oracles] \
             identity`: the path to the field that holds the connection's user, its `sub`)"
        )
    })
}

/// A clean run's note when the scenario declares an `[oracles] sequence` field and no
/// record of the run (of its `kinds`, when it names some) carried a number there (a
/// misspelled field or kind): the sequence oracle judged nothing. `None` when some did,
/// or none is declared.
fn sequence_unseen_note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let field = plan.oracles.sequence.as_deref()?;
    let numbered = sum_counters(reports).expect.sequence_numbered;
    let kinds = &plan.oracles.sequence_kinds;
    let of_kinds = if kinds.is_empty() {
        String::new()
    } else {
        format!(" of its kinds ({})", kinds.join(", "))
    };
    (numbered == 0).then(|| {
        format!(
            "sequence not exercised: no record{of_kinds} carried a number at its field \
             {field:?} (check `[oracles] sequence`: the field that numbers the server's \
             messages, and the kinds that carry it)"
        )
    })
}

/// A clean run's words on its forged tokens (the bad-token catalogue, time-shifted ones):
/// `114 bad-token attempts refused cleanly`, with those the server let in under its
/// lenient policy; `None` when the run presented none.
fn bad_tokens_words(t: &Tally) -> Option<String> {
    if t.forged == 0 {
        return None;
    }
    let mut words = format!(
        "{} of {} refused cleanly",
        t.forged_refused,
        crate::model::words::plural(t.forged, "bad-token attempt")
    );
    if t.forged_refused == t.forged {
        words = format!(
            "every one of {} refused cleanly",
            crate::model::words::plural(t.forged, "bad-token attempt")
        );
    }
    if t.forged_own_words > 0 {
        words.push_str(&format!(
            " and {} in the server's own words (an undeclared status or close code, below)",
            t.forged_own_words
        ));
    }
    if t.forged_accepted > 0 {
        words.push_str(&format!(
            " ({} accepted: the server's lenient policy, see the lenient line)",
            t.forged_accepted
        ));
    }
    Some(words)
}

/// What a clean run with nothing else to say judged: the expectations met, on how many
/// connections; or, where no expectation was met (a script that expects nothing), that
/// only the handshakes and the session oracles judged the server.
/// A duration shorter than this says nothing of a target that answered no upgrade within
/// it: the run, not the target, was too short.
const UPGRADE_ANSWERED_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

fn clean_summary(reports: &[ConnReport]) -> String {
    let mut counts = crate::model::ExpectCounts::default();
    for r in reports {
        let c = &r.counters.expect;
        counts.expectations_met += c.expectations_met;
        counts.expectations_errored += c.expectations_errored;
        counts.expectations_refused += c.expectations_refused;
    }
    clean_words(&counts, connections_accepted(reports))
}

/// Connections the server accepted at least once (a reconnect's attempts count once).
pub fn connections_accepted(reports: &[ConnReport]) -> u64 {
    reports
        .iter()
        .filter(|r| r.attempts.iter().any(|a| a.outcome == Outcome::Accepted))
        .count() as u64
}

/// `clean_summary`'s words for the expectations `counts` counts (met, answered with the
/// server's error event, on connections it refused) on `accepted` connections: what a
/// merge of clean parts says of the whole. "Every expectation met" only when no
/// expectation was answered otherwise: a server's error answers and refusals may be its
/// policy, not a violation, but they are no expectation met.
pub fn clean_words(counts: &crate::model::ExpectCounts, accepted: u64) -> String {
    let connections = crate::model::words::plural(accepted, "connection");
    let met = counts.expectations_met;
    let (errored, refused) = (counts.expectations_errored, counts.expectations_refused);
    if met == 0 {
        return format!(
            "{connections} accepted, and no expectation met: only the handshakes and the \
             session oracles judged the server"
        );
    }
    if errored == 0 && refused == 0 {
        return format!("every expectation met ({met} on {connections}) and no oracle broke");
    }
    let mut otherwise = Vec::new();
    if errored > 0 {
        otherwise.push(format!("{errored} answered with the server's error event"));
    }
    if refused > 0 {
        otherwise.push(format!("{refused} on connections it refused or shed"));
    }
    format!(
        "{met} of {} expectations met ({connections} accepted; {}) and no oracle broke",
        met + errored + refused,
        otherwise.join(", ")
    )
}

/// The inconclusive verdict of a run in which nothing broke, but the server closed or
/// refused some connections after their token expired ([`super::expiry`]): the
/// scenario's `ttl` is shorter than its script, a misconfiguration and never a race, and
/// what those scripts had left was never asked of the server. A clean run would claim
/// it; `None` when no token expired. Connections that never ran their scripts for other
/// reasons ([`unserved`]) are said after it.
fn token_expired(plan: &Plan, reports: &[ConnReport], t: &Tally) -> Option<Judgement> {
    let note = super::expiry::note(plan, reports)?;
    let also = unserved(t)
        .and_then(|j| j.hint)
        .map_or(String::new(), |hint| format!("; {hint}"));
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!("nothing broke, but {note}{also}")),
    })
}

/// The inconclusive verdict of a run in which nothing broke, but some valid-token
/// connections never got to run their scripts: attempts that got no answer from the server
/// at all (it refused or reset TCP, never answered the upgrade, broke it, or the login
/// before it failed), or reconnects refused as "who are you" after the server had accepted
/// the connection once (it takes each token once). What those scripts ask was never asked,
/// so silence about them is no pass, however few: the hint says how many and why. `None`
/// when every valid-token connection got an answer to each attempt.
fn unserved(t: &Tally) -> Option<Judgement> {
    let failed: u64 = t.valid_failed.values().sum();
    if failed == 0 && t.reconnects_refused == 0 {
        return None;
    }
    let mut parts = Vec::new();
    // A Close before acceptance is an answer, only not one the scenario reads as a
    // refusal or as shedding: said apart from silence.
    let (closed, silent): (BTreeMap<Cause, u64>, BTreeMap<Cause, u64>) = t
        .valid_failed
        .iter()
        .map(|(c, n)| (c.clone(), *n))
        .partition(|(c, _)| matches!(c, Cause::ServerClose(_) | Cause::InvalidClose(_)));
    let (closed_n, silent_n): (u64, u64) = (closed.values().sum(), silent.values().sum());
    let tls_only = silent.keys().all(|c| *c == Cause::Tls);
    if silent_n > 0 && tls_only {
        // The client ended those handshakes (a certificate it refused, from one of the
        // servers behind the URL, a balancer's backend) or the server did: no load's sign.
        parts.push(format!(
            "{silent_n} of {} valid-token connection attempts failed their TLS handshake \
             ({}; the servers behind the URL may not all present the same certificate): {}",
            t.valid,
            top_causes(&silent),
            tls_check(t.tls_said.as_deref())
        ));
    } else if silent_n > 0 {
        parts.push(format!(
            "{silent_n} of {} valid-token connection attempts got no answer from the server \
             ({}): a server down for part of the run refuses TCP connections, an \
             overloaded one lets the upgrade time out or resets it",
            t.valid,
            top_causes(&silent)
        ));
    }
    if closed_n > 0 {
        parts.push(format!(
            "the server closed {closed_n} of {} valid-token connection attempts before \
             accepting them ({}), with a code the scenario declares neither as a refusal nor \
             as shedding (`[oracles] reject.shed`; the answer line has its reason)",
            t.valid,
            top_causes(&closed)
        ));
    }
    if t.reconnects_refused > 0 {
        parts.push(format!(
            "{} reconnect{} of connections the server had accepted {} refused as \
             \"who are you\" (a server that takes each token once), so the steps after \
             {} never ran",
            t.reconnects_refused,
            plural(t.reconnects_refused),
            if t.reconnects_refused == 1 {
                "was"
            } else {
                "were"
            },
            if t.reconnects_refused == 1 {
                "it"
            } else {
                "them"
            },
        ));
    }
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "nothing broke, but not every connection ran its script: {}. What their scripts \
             ask of the server was never asked, so this run proves nothing about it",
            parts.join("; and ")
        )),
    })
}

/// The inconclusive verdict of a shard that holds none of the plan's connections (only a
/// shard can: a scenario plans at least one): it exercised nothing, so its silence is no
/// pass. `stampede merge` leaves such parts out of the merged verdict.
fn empty_shard(e: &Evidence<'_>) -> Option<Judgement> {
    if !e.plan.conns.is_empty() || e.stopped == StopReason::Interrupted {
        return None;
    }
    let tokens = e.plan.tokens.len();
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "this shard holds none of the plan's connections, so nothing was exercised: a \
             shard runs the connections of its tokens (slot modulo the shard count) and the \
             plan has {tokens} token slot{}; use at most that many shards, or merge every \
             shard (`stampede merge` judges the split and leaves empty shards out)",
            plural(tokens as u64)
        )),
    })
}

/// A missed deadline is the client's own when the client itself was stalled for at
/// least this share of the time the expectation was given ([`ClientStalls`]), unless it
/// caught up after the stall and the answer still did not come ([`caught_up`]).
const STALLED_SHARE: f64 = 0.25;

/// The least time, in milliseconds, a client must have run after a stall, its connection
/// still open, before an answer still missing counts as lost ([`caught_up`]). It must
/// also have run the expectation's whole `within`: a server on the same machine stalled
/// too, and then had as long to answer as a quiet run gives it. This floor covers short
/// `within`s: a process woken from a stall takes a scheduler slice or two to run again
/// and then drains the backlog of frames the kernel kept, a few milliseconds in all;
/// 200 ms is far past that, and still short beside the stalls that excuse a deadline
/// (the meter's threshold is 100 ms).
const CAUGHT_UP_MIN_MS: f64 = 200.0;

/// The client-limited verdict of a run whose every violation is an expectation unmet on a
/// connection whose buffer of unclaimed messages overflowed (`[oracles] max_buffered`,
/// `max_buffered_bytes`): the client dropped what those expectations may have waited for
/// (a long think between sends and their `expect` buffers every answer; a pipelined burst
/// whose answers outnumber the bound), so they prove no loss. Every violation must be
/// accounted for: kept, or counted by its connection (a connection keeps only its first
/// few) as a completeness violation of an overflowing one; otherwise `None`, and the
/// violations stand.
fn overflowed(
    plan: &Plan,
    reports: &[ConnReport],
    kept: &[Violation],
    violations: u64,
) -> Option<Judgement> {
    let overflowing = ids_of(reports, |r| r.counters.expect.buffer_overflows > 0);
    if !only_unmet_on(&overflowing, reports, kept, violations) {
        return None;
    }
    let dropped: u64 = reports
        .iter()
        .map(|r| r.counters.expect.buffer_overflows)
        .sum();
    let bytes: u64 = reports
        .iter()
        .map(|r| r.counters.expect.buffer_overflow_bytes)
        .sum();
    let o = &plan.oracles;
    Some(Judgement {
        verdict: Verdict::ClientLimited,
        hint: Some(format!(
            "every violation ({violations}) is an expectation unmet on a connection whose \
             buffer of messages no expectation had claimed yet overflowed: this client \
             dropped {dropped} message{} ({bytes} bytes) past [oracles] max_buffered = {} / \
             max_buffered_bytes = {}, which those expectations may have waited for, so they \
             say nothing about the server. Raise those limits, or `expect` the answers \
             sooner (a long think between sends and their expect buffers every answer)",
            plural(dropped),
            o.max_buffered,
            o.max_buffered_bytes
        )),
    })
}

/// The ids of the connections whose report `holds`.
fn ids_of(
    reports: &[ConnReport],
    holds: impl Fn(&ConnReport) -> bool,
) -> std::collections::BTreeSet<u32> {
    reports.iter().filter(|r| holds(r)).map(|r| r.id).collect()
}

/// Whether the run broke something (`violations`, of which `kept`) and every violation is
/// an unmet expectation on one of the connections `conns` (report ids): each kept one is,
/// and either every one was kept or every connection's count says so.
fn only_unmet_on(
    conns: &std::collections::BTreeSet<u32>,
    reports: &[ConnReport],
    kept: &[Violation],
    violations: u64,
) -> bool {
    let all_kept = violations > 0
        && !conns.is_empty()
        && kept
            .iter()
            .all(|v| v.oracle == OracleKind::Completeness && conns.contains(&v.conn));
    if !all_kept {
        return false;
    }
    let counted: u64 = reports
        .iter()
        .flat_map(|r| r.violations_by_oracle.values())
        .sum();
    let all_counted = counted == violations
        && reports.iter().all(|r| {
            r.violations_by_oracle.iter().all(|(oracle, n)| {
                *n == 0 || (*oracle == OracleKind::Completeness && conns.contains(&r.id))
            })
        });
    kept.len() as u64 == violations || all_counted
}

/// The client-limited verdict of a run whose every violation is an expectation unmet on
/// a connection this client closed (1009, message too big) for a frame over `[limits]
/// max_message_bytes`: the server sent more than the client was set to read, and what
/// the expectations waited for may have been in it or after it, so they say nothing
/// about the server. `None` otherwise, and the violations stand.
fn oversized(
    plan: &Plan,
    reports: &[ConnReport],
    kept: &[Violation],
    violations: u64,
) -> Option<Judgement> {
    let cut = ids_of(reports, |r| {
        r.attempts.iter().any(|a| a.cause == Some(Cause::Oversized))
    });
    if !only_unmet_on(&cut, reports, kept, violations) {
        return None;
    }
    Some(Judgement {
        verdict: Verdict::ClientLimited,
        hint: Some(format!(
            "every violation ({violations}) is an expectation unmet on a connection this \
             client closed (1009, message too big) when the server sent a frame larger than \
             [limits] max_message_bytes = {} bytes ({} connection{} so): what they waited \
             for may have been in it or after it, so they say nothing about the server. \
             Raise `[limits] max_message_bytes` if its messages are meant to be that large; \
             if they are not, that is the finding",
            plan.limits.max_message_bytes,
            cut.len(),
            plural(cut.len() as u64)
        )),
    })
}

/// A run otherwise clean some of whose connections never reached the server for the
/// client's own limits (descriptors, local ports): what the server did with the others is
/// no finding, but the planned load was not applied, and a clean verdict would pass a CI
/// job that ran part of it. Client limited, saying how many and why; `None` when every
/// connection was accepted or failed for reasons of the server's.
fn client_short(reports: &[ConnReport]) -> Option<Judgement> {
    let mut causes: BTreeMap<Cause, u64> = BTreeMap::new();
    let mut short = 0u64;
    for r in reports {
        let accepted = r.attempts.iter().any(|a| a.outcome == Outcome::Accepted);
        let limited = r
            .attempts
            .iter()
            .filter_map(|a| a.cause.as_ref())
            .filter(|c| c.is_client_side());
        let mut any = false;
        for cause in limited {
            *causes.entry(cause.clone()).or_default() += 1;
            any = true;
        }
        short += u64::from(any && !accepted);
    }
    (short > 0).then(|| Judgement {
        verdict: Verdict::ClientLimited,
        hint: Some(format!(
            "{short} of {} connections never reached the server, stopped by this client's \
             own limit ({}); the others met what was judged, but the planned load was not \
             applied: raise `ulimit -n`, widen net.ipv4.ip_local_port_range, or spread \
             connections over source addresses (`--source-addr A,B`, `--workers N`)",
            reports.len(),
            top_causes(&causes)
        )),
    })
}

/// The client-limited verdict of a run whose every violation is a deadline that ran out
/// while the client itself was stalled for a good part of it ([`STALLED_SHARE`]): an
/// overloaded or throttled machine, not the server. Every violation must be kept (with
/// its window) and every stall known, and none may be a loss the client caught up on
/// ([`caught_up`]); otherwise `None`, and the violations stand.
fn stalled(kept: &[Violation], violations: u64, stalls: &ClientStalls) -> Option<Judgement> {
    if violations == 0 || kept.len() as u64 != violations || !stalls.all_kept() {
        return None;
    }
    let all_stalled = kept
        .iter()
        .all(|v| stalled_through(v, stalls) && caught_up(v, stalls).is_none());
    all_stalled.then(|| Judgement {
        verdict: Verdict::ClientLimited,
        hint: Some(format!(
            "every violation ({violations}) is a deadline that ran out while this client \
             itself could not keep time for at least {:.0}% of it: it stalled {} time{} for \
             {:.0} ms in all (the longest {:.0} ms): the machine was overloaded or throttled \
             (a CPU quota, stolen VM time, swapping) or the client too busy, and those \
             deadlines say nothing about the server. Rerun on a quieter machine, or with \
             fewer connections",
            STALLED_SHARE * 100.0,
            stalls.count,
            plural(stalls.count),
            stalls.total_ms,
            stalls.longest_ms
        )),
    })
}

/// Whether `v` is a deadline that ran out while the client was stalled for at least
/// [`STALLED_SHARE`] of its window.
fn stalled_through(v: &Violation, stalls: &ClientStalls) -> bool {
    v.window_ms
        .is_some_and(|window| stalls.within(v.at_ms - window, v.at_ms) >= window * STALLED_SHARE)
}

/// For a deadline missed while the client was stalled: how long, in milliseconds, the
/// client ran after the last stall inside its window ended, its connection still open,
/// when that is at least its `within` and [`CAUGHT_UP_MIN_MS`] and the answer never came.
/// A stall only delays reading (the kernel keeps what arrives), so such an answer was
/// lost, not read late: a finding. The later stalls are not counted as running.
///
/// `None` when the answer came late ([`Violation::late_ms`]: slow, not lost), when the
/// connection's end is unknown (results written before [`Violation::conn_end_ms`]),
/// when no stall touched the window, and for an `expect` without `correlate`: its late
/// answer cannot be told from the next one's, so `late_ms` never says it came, and a
/// missing one proves nothing.
fn caught_up(v: &Violation, stalls: &ClientStalls) -> Option<f64> {
    let window = v.window_ms?;
    let end = v.conn_end_ms?;
    if v.late_ms.is_some() || (v.correlation.is_none() && !super::checker::is_missed_pong(v)) {
        return None;
    }
    let from = v.at_ms - window;
    let stall_end = stalls
        .kept
        .iter()
        .filter(|s| s.at_ms < v.at_ms && s.at_ms + s.ms > from)
        .map(|s| s.at_ms + s.ms)
        .max_by(f64::total_cmp)?;
    let read = (end - stall_end) - stalls.within(stall_end, end);
    (read >= window.max(CAUGHT_UP_MIN_MS)).then_some(read)
}

/// The note of a run with violations on the deadlines that a client stall would have
/// excused ([`stalled`]) but that stand, for the client caught up and read on while the
/// answer never came ([`caught_up`]); `None` when there are none.
fn caught_up_note(kept: &[Violation], stalls: &ClientStalls) -> Option<String> {
    if !stalls.all_kept() {
        return None;
    }
    let read: Vec<(&Violation, f64)> = kept
        .iter()
        .filter(|v| stalled_through(v, stalls))
        .filter_map(|v| Some((v, caught_up(v, stalls)?)))
        .collect();
    let (first, least) = read.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let n = read.len() as u64;
    let (misses, stand, among, atleast) = if n == 1 {
        ("miss", "stands", "", "")
    } else {
        ("misses", "stand", " among them", "at least ")
    };
    Some(format!(
        "{n} deadline {misses} that ran out while this client was stalled {stand} \
         (connection {}'s {}{among}): the client caught up and read for {atleast}{least:.0} \
         ms more, its connection open (its `within`, and at least {CAUGHT_UP_MIN_MS:.0} ms, \
         would have read an answer already sent); the answer never came. A stall only \
         delays reading: that answer was lost, not late",
        first.conn,
        first.expected_shown(),
    ))
}

/// The hint of an inconclusive run whose collisions load shedding took: on some shared
/// tokens the handshakes overlapped only with attempts the server shed, which never
/// reached its session logic ([`Coverage::shed_tokens`]). `None` when shedding took none.
fn shed_coverage_hint(c: &Coverage) -> Option<String> {
    (c.shed_tokens > 0).then(|| {
        let left = if c.overlapping_tokens == 0 {
            "none was left to exercise it".to_string()
        } else {
            format!(
                "the {} left could not tell whether the server served two at once (add an \
                 exchange after the first, e.g. a second request after a short think)",
                c.overlapping_tokens
            )
        };
        format!(
            "shedding ate the race's coverage: on {} of the {} shared tokens the handshakes \
             overlapped only with ones the server shed (HTTP 429/503, close 1013 or a \
             `reject.shed` code: they never reach its session logic), and {left}. Lower the \
             rate or raise the server's limit so colliding upgrades get through",
            c.shed_tokens, c.shared_tokens
        )
    })
}

/// How many attempts the run's end cut while they waited for the answer to their upgrade,
/// when that is how every attempt of the run ended (nothing answered, nothing refused,
/// nothing failed); `None` otherwise.
fn unanswered_upgrades(reports: &[ConnReport]) -> Option<u64> {
    let mut cut = 0;
    for a in reports.iter().flat_map(|r| &r.attempts) {
        if a.outcome != Outcome::Cut || a.upgraded_us.is_some() {
            return None;
        }
        cut += 1;
    }
    (cut > 0).then_some(cut)
}

/// INCONCLUSIVE for a run otherwise clean whose sends nothing judged and nothing answered:
/// nothing came after a send no `expect` follows on some connection
/// ([`unjudged::silent_after_unjudged`]: what a server that drops it shows, whatever else
/// the run judged: a bad token's refusal elsewhere, or a shared token's collision, judges
/// nothing of that send), or the server sent nothing back to a script that expects nothing
/// ([`unanswered_hint`]: a protocol whose handshake the script never completes reads just
/// like a silent drop), unless the handshakes had a race of their own to judge (a shared
/// token's connections in flight together, forged tokens' refusals): then only those were
/// judged, and the clean verdict's note says so.
fn unexercised_sends(e: &Evidence<'_>, t: &Tally) -> Option<Judgement> {
    let counters = sum_counters(e.reports);
    let handshakes_judged = e.coverage.shared_tokens > 0 || t.forged > 0;
    let silent = unjudged::silent_after_unjudged(e.plan, &counters);
    let hint = match (unanswered_hint(e.reports), silent) {
        // Nothing came back at all: said so, with the sends that went unjudged.
        (Some(back), silent) if silent.is_some() || !handshakes_judged => {
            match unjudged::unjudged_note(e.plan) {
                Some(note) => format!("{back}; {note}"),
                None => back,
            }
        }
        (_, Some(silent)) => silent,
        _ => return None,
    };
    let met = counters.expect.expectations_met;
    let met = if met > 0 {
        format!(
            " (what the script does judge was met: {})",
            crate::model::words::plural(met, "expectation")
        )
    } else {
        String::new()
    };
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!("{hint}{met}")),
    })
}

/// A clean run's note when the server sent nothing back to a script that expects nothing:
/// only the handshakes and the session oracles judged it, which a bare CLEAN would hide
/// (a protocol whose handshake the script never completes looks just like this).
fn unanswered_hint(reports: &[ConnReport]) -> Option<String> {
    let (mut sent, mut received, mut expected) = (0u64, 0u64, 0u64);
    for r in reports {
        sent += r.counters.messages_sent;
        received += r.counters.messages_received;
        expected += r.counters.expect.expectations;
    }
    unanswered(sent, received, expected)
}

/// `unanswered_hint` from a whole run's counters (a summary's): `Some` with the hint
/// when the server sent nothing back to a script that expects nothing. A hunt's round like
/// that judged no script at all, so it is no clean round.
pub fn sent_nothing_back(run: &Counters) -> Option<String> {
    unanswered(
        run.messages_sent,
        run.messages_received,
        run.expect.expectations,
    )
}

/// The hint of a run that sent `sent` messages, received `received` and registered
/// `expected` expectations, when the server answered nothing to a script that expects
/// nothing.
fn unanswered(sent: u64, received: u64, expected: u64) -> Option<String> {
    (sent > 0 && received == 0 && expected == 0).then(|| {
        format!(
            "the server sent nothing back ({sent} message{} sent, 0 received) and no step \
             expects an answer: only the handshakes and the session oracles judged this run \
             (add an `expect` for what the script relies on)",
            plural(sent)
        )
    })
}

/// Whether token slot `token` holds a valid token (not one of the catalogue's must-reject
/// entries, whose refusal is their right answer).
fn valid_token(plan: &Plan, token: u32) -> bool {
    plan.tokens
        .get(token as usize)
        .is_some_and(|tok| !tok.forge.as_ref().is_some_and(|f| f.must_reject()))
}

/// Whether token slot `token` holds a forged token (a catalogue entry or a time shift,
/// must-reject or policy): one whose handling by the server is what it is there to judge.
fn forged_token(plan: &Plan, token: u32) -> bool {
    plan.tokens
        .get(token as usize)
        .is_some_and(|tok| tok.forge.is_some())
}

/// The server shed most of the attempts that presented a forged token (HTTP 429 or 503, a
/// close 1013, a declared shed code) rather than refuse or accept them: "not now" says
/// nothing about a token, so the bad tokens were never judged and the run's silence about
/// them is no pass. Inconclusive, as a race whose collisions shedding ate is
/// ([`shed_coverage_hint`]). A few shed among many judged leave the run judged (the shed
/// note counts them). `None` when the run presented no forged token, or the server
/// answered at least half of them.
fn bad_tokens_shed(t: &Tally) -> Option<Judgement> {
    let shed: u64 = t.forged_shed.values().sum();
    if t.forged == 0 || shed * 2 <= t.forged {
        return None;
    }
    Some(Judgement {
        verdict: Verdict::Inconclusive,
        hint: Some(format!(
            "the server shed {shed} of the {} bad-token attempt{} under load ({}): the bad \
             tokens were never judged (it refused or accepted only {} of them), and \
             shedding (\"not now\") is neither; run at a rate it takes (fewer users, a \
             slower ramp) or raise its limit",
            t.forged,
            plural(t.forged),
            top_causes(&t.forged_shed),
            t.forged - shed
        )),
    })
}

/// What an auth misconfiguration's hint tells a user to check: the tokens an `[auth]
/// tokens` source (`opaque`: its kind) gives, or the signing material.
/// What to check when no token travels (`placement = "none"`) and every connection was
/// refused all the same.
const NO_TOKEN_CHECK: &str = "no token travels (placement none), so check the credentials \
     the script itself sends (a login and passcode in its first messages)";

/// The tokens an auth refusal is of, named by where they came from: valid to us (signed
/// with the scenario's own key, or as the `[auth] tokens` source gave them), which is not
/// to say valid to the server.
pub(super) fn our_tokens(opaque: Option<&str>) -> String {
    match opaque {
        Some(kind) => format!("token the [auth] tokens {kind} gave"),
        None => "token signed with the scenario's key".into(),
    }
}

fn auth_check(opaque: Option<&str>) -> String {
    match opaque {
        Some(kind) => format!("check the tokens the [auth] tokens {kind} gives"),
        None => "check the signing secret or key, aud and iss the server expects".into(),
    }
}

fn tally(plan: &Plan, reports: &[ConnReport]) -> Tally {
    let reject = &plan.oracles.session.reject;
    let clean = |a: &Attempt| a.cause.as_ref().is_some_and(|c| reject.is_clean(c));
    let mut t = Tally::default();
    // Connections the declared exclusivity limit kept out: the server closing one before
    // accepting it enforced the limit the scenario declares, whatever its code.
    let over_limit = super::shedding::over_the_limit(plan, reports);
    // When each token slot was first presented: an attempt's start, aborted ones too
    // (an abort after the request has shown the server its token).
    let mut first_presented: BTreeMap<u32, u64> = BTreeMap::new();
    for r in reports {
        for a in &r.attempts {
            let first = first_presented.entry(r.token).or_insert(a.started_us);
            *first = (*first).min(a.started_us);
        }
    }
    for r in reports {
        let valid = valid_token(plan, r.token);
        if valid && t.first_error.is_none() {
            t.first_error = r.first_error.as_deref().map(str::to_string);
        }
        let forged = forged_token(plan, r.token);
        t.subprotocol += u64::from(r.answer.as_ref().is_some_and(names_subprotocol));
        t.extension += u64::from(r.answer.as_ref().is_some_and(names_extension));
        if t.tls_said.is_none() {
            let tls = r.answer.as_ref().filter(|a| a.cause == Cause::Tls);
            t.tls_said = tls.map(|a| a.detail.clone());
        }
        let mut refused_here = false;
        for a in &r.attempts {
            if matches!(
                a.outcome,
                Outcome::Aborted | Outcome::Pending | Outcome::Cut
            ) {
                continue;
            }
            t.judged += 1;
            t.upgraded += u64::from(a.upgraded_us.is_some() || a.outcome == Outcome::Accepted);
            t.accepted += u64::from(a.outcome == Outcome::Accepted);
            // A forged token's request refused as too large to read (the oversized entry's
            // 431 or 414) is refused as cleanly as by a listed status, as rejection
            // hygiene judges it: with a wrong secret, a run whose other tokens all got
            // 401 is a misconfiguration, not a target that answers no upgrade.
            let too_large = forged && a.cause.as_ref().is_some_and(Cause::is_too_large);
            let refused_cleanly = a.outcome == Outcome::Rejected && (clean(a) || too_large);
            t.clean_refusals += u64::from(refused_cleanly);
            // Shed before any work (refused, or accepted and shed before anything was
            // served): a run the server shed so throughout exercised nothing it could be
            // judged on. One it served first did exercise the target.
            if a.shed_before_work() {
                t.shed += 1;
                if let Some(cause) = &a.cause {
                    *t.shed_causes.entry(cause.clone()).or_default() += 1;
                }
            }
            if forged {
                t.forged += 1;
                t.forged_refused += u64::from(refused_cleanly);
                // The same rules rejection hygiene and the acceptance judge read them by.
                let own_words = !refused_cleanly
                    && a.outcome == Outcome::Rejected
                    && reject.policy == crate::model::RejectPolicy::Lenient
                    && match &a.cause {
                        Some(cause @ Cause::Http(_)) => {
                            super::refusal::undeclared_refusal(plan, r.token, a, cause)
                        }
                        Some(Cause::ServerClose(code)) => super::refusal::is_refusal_code(*code),
                        _ => false,
                    };
                t.forged_own_words += u64::from(own_words);
                t.forged_accepted += u64::from(a.outcome == Outcome::Accepted);
                t.forged_failed += u64::from(a.outcome != Outcome::Accepted && !refused_cleanly);
                // Shed before acceptance: "not now", no answer about the token. One the
                // server accepted was judged (accepting it is rejection hygiene's).
                if let (true, Some(cause)) = (a.is_shed(), &a.cause) {
                    *t.forged_shed.entry(cause.clone()).or_default() += 1;
                }
            }
            if let (Some(cause), false) = (&a.cause, a.outcome == Outcome::Accepted) {
                *t.causes.entry(cause.clone()).or_default() += 1;
                t.client_side += u64::from(cause.is_client_side());
            }
            if valid {
                t.valid += 1;
                t.valid_accepted += u64::from(a.outcome == Outcome::Accepted);
                // A token past its `exp` ([`super::expiry`]) is the scenario's to fix, and
                // said apart: neither a server down nor one that takes each token once.
                let expired = a.token_expired;
                // One the client tried again after (a backoff) let the script go on; one
                // the script closed while the server spoke on it got answers
                // ([`closed_unaccepted_note`]).
                let retried = a.retried || closed_unaccepted(a);
                let kept_out = over_limit.contains(&r.id)
                    && matches!(
                        a.cause,
                        Some(Cause::ServerClose(_) | Cause::InvalidClose(_))
                    );
                if let (Outcome::Failed, Some(cause), false, false, false) =
                    (a.outcome, &a.cause, expired, retried, kept_out)
                {
                    if !cause.is_client_side() {
                        *t.valid_failed.entry(cause.clone()).or_default() += 1;
                    }
                }
                let accepted_before = r
                    .attempts
                    .iter()
                    .any(|b| b.outcome == Outcome::Accepted && b.started_us < a.started_us);
                t.reconnects_refused += u64::from(
                    refused_cleanly
                        && auth_status(reject, a)
                        && accepted_before
                        && !expired
                        && !retried,
                );
                if let (true, Some(cause)) = (refused_cleanly && auth_status(reject, a), &a.cause) {
                    *t.valid_refused.entry(cause.clone()).or_default() += 1;
                    refused_here = true;
                    let shown_before = first_presented
                        .get(&r.token)
                        .is_some_and(|first| *first < a.started_us);
                    t.valid_refused_again += u64::from(shown_before);
                }
            }
        }
        t.valid_refused_connections += u64::from(refused_here);
    }
    t
}

/// The valid tokens' refusals by cause, and on how many connections when some tried more
/// than once (`http_401 ×12 on 6 connections`: each reconnected once).
fn refusals_text(t: &Tally) -> String {
    let refused: u64 = t.valid_refused.values().sum();
    let causes = top_causes(&t.valid_refused);
    match t.valid_refused_connections {
        n if n > 0 && n < refused => {
            format!(
                "{causes} on {}",
                crate::model::words::plural(n, "connection")
            )
        }
        _ => causes,
    }
}

/// Whether an answer that turned a connection away says the subprotocol was why: a 101
/// without an agreed one (the handshake's own check), or a refusal (an HTTP body, a Close
/// reason: 400 "subprotocol chat.v1 required", Close 1008 "unsupported subprotocol") that
/// names it and reads as no auth refusal. A server's 1008 is as often "wrong protocol" as
/// "wrong token"; its reason tells which.
fn names_subprotocol(a: &crate::model::Answer) -> bool {
    let detail = a.detail.to_lowercase();
    if a.cause == Cause::Protocol && detail.contains("subprotocol") {
        return true;
    }
    let body = a.body.to_lowercase();
    let named = body.contains("subprotocol") || body.contains("sec-websocket-protocol");
    named && !door::auth_reason(&body)
}

/// Whether a refused upgrade's answer names a WebSocket extension it requires
/// (Sec-WebSocket-Extensions, permessage-deflate: RFC 7692), which stampede does not
/// offer: HTTP 400 "permessage-deflate required".
fn names_extension(a: &crate::model::Answer) -> bool {
    if !matches!(a.cause, Cause::Http(_)) {
        return false;
    }
    let text = format!("{} {}", a.detail, a.body).to_lowercase();
    [
        "permessage-deflate",
        "sec-websocket-extensions",
        "compression extension",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Whether attempt `a` was refused with an auth refusal ([`is_auth_refusal`]) under the
/// scenario's `reject` rules.
fn auth_status(reject: &RejectSpec, a: &Attempt) -> bool {
    a.cause.as_ref().is_some_and(|c| is_auth_refusal(reject, c))
}

/// Whether a refusal says "who are you" rather than "not now": HTTP 401 or 403, a close
/// code that refuses credentials in band (1008 policy violation; 4401 and 4403, the
/// unauthorized and forbidden codes of graphql-transport-ws and others), a close code or
/// HTTP status the scenario lists in `[oracles] reject` (the codes it says the server
/// refuses a token with: Discord's 4004 "Authentication failed", Centrifugo's 3500,
/// Pusher's 4009), or the refusal message it declares (`reject.message`: a kind it names
/// for turning a connection away before acceptance, ActionCable's `unauthorized`
/// disconnect). A 409 or a 1013, or a code the scenario lists as shedding or takeover,
/// says the session is held or the server is busy: that is the session oracles'
/// business, never a misconfiguration.
pub fn is_auth_refusal(reject: &RejectSpec, cause: &Cause) -> bool {
    if reject.sheds(cause) || reject.replaces(cause) {
        return false;
    }
    match cause {
        Cause::Http(401 | 403) | Cause::ServerClose(1008 | 4401 | 4403) => true,
        Cause::RefusedInBand(_) => true,
        Cause::Http(409) => false,
        Cause::Http(_) | Cause::ServerClose(_) => reject.is_clean(cause),
        _ => false,
    }
}

/// No attempt got through the upgrade, and not every one was a clean refusal; or some
/// did, but the server accepted no valid token's connection after it (see
/// [`none_accepted`]); or the server shed every attempt. `target`: the URL dialled.
fn unusable(reject: &RejectSpec, t: &Tally, target: &str) -> Option<Judgement> {
    if t.judged == 0 || t.clean_refusals == t.judged {
        return None;
    }
    // Every valid token refused cleanly, and what else failed presented a forged token (a
    // catalogue token the server choked on: a reset, a head too large to read): the valid
    // tokens' answer says what to check, and the forged ones are rejection hygiene's.
    if t.valid > 0 && t.valid_accepted == 0 && t.clean_refusals + t.forged_failed == t.judged {
        let refused: u64 = t.valid_refused.values().sum();
        if refused == t.valid {
            return None;
        }
    }
    if t.shed == t.judged {
        // Not a wrong URL or token: "not now" to every attempt (the shed note has the
        // figures).
        // Every attempt, the first ones too: a server that says "not now" to a handful of
        // connections may be down rather than busy.
        return Some(Judgement {
            verdict: Verdict::TargetUnusable,
            hint: Some(format!(
                "the server shed every attempt ({}): nothing was exercised; run at a rate it \
                 takes (fewer users, a slower ramp) or raise its limit; a server that sheds \
                 even the first few connections is more likely down or in maintenance (its \
                 logs say which)",
                top_causes(&t.shed_causes)
            )),
        });
    }
    if t.upgraded > 0 {
        return none_accepted(reject, t);
    }
    if t.client_side > 0 && t.client_side + t.clean_refusals == t.judged {
        return Some(Judgement {
            verdict: Verdict::ClientLimited,
            hint: Some(format!(
                "every failure was the client's own limit ({}): raise `ulimit -n`, widen \
                 net.ipv4.ip_local_port_range, or spread connections over source addresses",
                top_causes(&t.causes)
            )),
        });
    }
    let logins = t.causes.get(&Cause::LoginFailed).copied().unwrap_or(0);
    if logins > 0 && logins + t.clean_refusals == t.judged {
        // Every dial stopped at its login request: the WebSocket target was never asked,
        // so its URL is not what to check; the token source is.
        return Some(Judgement {
            verdict: Verdict::AuthMisconfigured,
            hint: Some(format!(
                "every login failed before the upgrade was tried (login_failed ×{logins}): \
                 check the [auth] tokens login URL, body, credentials and token path (the \
                 answer line says what the login answered)"
            )),
        });
    }
    if t.subprotocol > 0 {
        // The server answered the upgrade: the URL and the scheme are right.
        return Some(subprotocol_refused(t));
    }
    if t.extension > 0 {
        return Some(Judgement {
            verdict: Verdict::TargetUnusable,
            hint: Some(format!(
                "no connection got through the upgrade ({}), and the server's answer named a \
                 WebSocket extension (the answer line says how): it requires one stampede \
                 does not negotiate (permessage-deflate, RFC 7692; stampede sends frames \
                 uncompressed). Nothing was exercised: test against an endpoint or a server \
                 setting that accepts uncompressed connections",
                top_causes(&t.causes)
            )),
        });
    }
    if let Some(j) = never_connected(t, target) {
        return Some(j);
    }
    let check = http_answer_check(t)
        .or_else(|| tls_answer_check(t))
        .or_else(|| unanswered_upgrade_check(t))
        .unwrap_or_else(|| {
            if target.starts_with("wss://") {
                "check the URL, TLS trust (--ca-file) and that the server speaks WebSocket there"
            } else {
                "check the URL (its path, and wss:// should the server want TLS) and that the \
             server speaks WebSocket there"
            }
        });
    // Only bad tokens, each refused with a status that refuses a request (a 400): a
    // WebSocket server refusing them so reads exactly as a URL that takes no upgrade.
    let refusals_only = t.causes.keys().all(
        |c| matches!(c, Cause::Http(status) if crate::oracle::refusal::is_refusal_status(*status)),
    );
    let forged_only = if t.valid == 0 && refusals_only {
        "; every connection here presents a bad token, and a WebSocket server refusing \
         them with that status reads the same: add a group of valid tokens (a control the \
         server must take) to tell the two apart, and declare the status in [oracles] \
         reject.http"
    } else {
        ""
    };
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "no connection got through the upgrade ({}): {check}{forged_only}",
            top_causes(&t.causes)
        )),
    })
}

/// What to check when every attempt's upgrade went unanswered within `handshake_timeout`
/// (the TCP connection taken): no WebSocket server there, or one slower than the timeout,
/// which nothing here tells apart. `None` when some attempt ended otherwise.
fn unanswered_upgrade_check(t: &Tally) -> Option<&'static str> {
    (!t.causes.is_empty() && t.causes.keys().all(|c| *c == Cause::Timeout("upgrade"))).then_some(
        "the server took the TCP connections and answered no upgrade in time: check the URL \
         (its path, and wss:// should the server want TLS) and that the server speaks \
         WebSocket there, or, should it only answer slowly (a server under load, a proxy \
         waking a backend), raise [limits] handshake_timeout",
    )
}

/// What to check when the server answered every upgrade with an HTTP status that refuses
/// no token (those are judged before): the request reached an HTTP server, so its host,
/// port and TLS are right, and the path, a redirect or the server are what to look at.
/// `None` when some attempt ended otherwise.
fn http_answer_check(t: &Tally) -> Option<&'static str> {
    let statuses: Vec<u16> = t
        .causes
        .keys()
        .map(|c| match c {
            Cause::Http(status) => Some(*status),
            _ => None,
        })
        .collect::<Option<_>>()?;
    Some(http_status_check(&statuses))
}

/// What to check when every attempt failed its TLS handshake, from what the first one's
/// failure said ([`tls_check`]). `None` when some attempt ended otherwise.
fn tls_answer_check(t: &Tally) -> Option<&'static str> {
    let all_tls = !t.causes.is_empty() && t.causes.keys().all(|c| *c == Cause::Tls);
    all_tls.then(|| tls_check(t.tls_said.as_deref()))
}

/// What to do about a failed TLS handshake, read from rustls's words for it (`said`: the
/// answer's detail): a self-signed certificate marked as a CA (what `openssl req -x509`
/// makes by default) is refused as a server's even when `--ca-file` names it; an unknown
/// issuer wants its CA given; another host's name, the name it was issued for; an
/// out-of-date one, renewing (or this machine's clock); a handshake the server ended or
/// answered in plain text, `ws://`.
fn tls_check(said: Option<&str>) -> &'static str {
    let says = |words: &str| said.is_some_and(|s| s.contains(words));
    if says("CaUsedAsEndEntity") {
        "the server presents a CA certificate as its own (a self-signed one marked CA:TRUE, \
         as `openssl req -x509` makes by default), which a TLS client refuses even when \
         --ca-file names it: give the server a certificate marked CA:FALSE (signed by that \
         CA, or self-signed without the mark), or use --insecure against a test server"
    } else if says("UnknownIssuer") {
        "the server's certificate comes from a CA this machine does not trust: pass that \
         CA's certificate with --ca-file (or use --insecure against a test server)"
    } else if says("not valid for name") || says("NotValidForName") {
        "the server's certificate is not for the URL's host: dial a name it was issued for \
         (its subject alternative names; the answer line lists them), or reissue it"
    } else if says("Expired") || says("NotValidYet") || says("expired") {
        "the server's certificate is out of date (expired, or not yet valid): renew it, or \
         check this machine's clock"
    } else if says("eof") || says("InvalidContentType") || says("corrupt message") {
        "the server ended the TLS handshake or did not answer it in TLS: it may serve plain \
         ws:// on that port"
    } else {
        "check the URL, TLS trust (--ca-file) and that the server speaks WebSocket there"
    }
}

/// What to check when the server answered the upgrade with these HTTP `statuses` and no
/// other way (the verdict's hint and calibration's account say it alike).
pub(super) fn http_status_check(statuses: &[u16]) -> &'static str {
    let all = |range: std::ops::RangeInclusive<u16>| statuses.iter().all(|s| range.contains(s));
    if statuses.iter().all(|s| matches!(s, 404 | 410)) {
        "the server there serves HTTP, but nothing at that path takes a WebSocket upgrade: \
         check the URL's path (and its query)"
    } else if all(300..=399) {
        "the server redirects the upgrade elsewhere, and stampede follows no redirect: point \
         the URL where it redirects (the answer line shows its Location)"
    } else if all(500..=599) {
        "the server failed on the upgrade request (an HTTP 5xx): its logs say why; the URL \
         reached it"
    } else {
        "the server there serves HTTP but did not take the upgrade: check the URL's path and \
         that the server speaks WebSocket on it"
    }
}

/// No attempt got a TCP connection to `target` (every one failed to connect): nothing
/// there spoke at all, so whether it speaks WebSocket is not what to check. Refused
/// everywhere (ECONNREFUSED: a closed port) means nothing listens at that host and port;
/// a connect that timed out or found no route means the host or the way to it.
fn never_connected(t: &Tally, target: &str) -> Option<Judgement> {
    let before_tcp = |c: &Cause| matches!(c, Cause::Connect(_) | Cause::Timeout("connect"));
    if t.causes.is_empty() || !t.causes.keys().all(before_tcp) {
        return None;
    }
    let refused = t
        .causes
        .keys()
        .all(|c| *c == Cause::Connect("refused".into()));
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "no connection got through the upgrade ({}): {}",
            top_causes(&t.causes),
            unconnected_check(refused, target)
        )),
    })
}

/// What to check when no TCP connection to `target` was made: every connect `refused`
/// (nothing listens at that port), or one timed out or found no route (the host, or the
/// network on the way). The verdict's hint and calibration's account say it alike.
pub(super) fn unconnected_check(refused: bool, target: &str) -> String {
    let at = crate::model::url::host_port(target).unwrap_or_else(|| target.to_string());
    if refused {
        format!(
            "nothing accepted the TCP connection at {at}: check the URL's port and that the \
             server is running"
        )
    } else {
        format!(
            "no TCP connection to {at} was made: check the URL's host and port, that the \
             server is running and that the network (a firewall, a route) lets it through"
        )
    }
}

/// What the run's connections received, by how it read: `(JSON records, of them without
/// a kind, non-JSON text records, binary frames)`.
/// No connection was accepted under `[oracles] accepted = { message = KIND }`, though the
/// server got them through the upgrade and spoke on every one it did not refuse in
/// records the scenario reads (of some kind), until the scripts closed them: the server's
/// welcome is not what
/// the scenario calls KIND (a misspelled `[oracles.kinds]` rule, another field or value),
/// so nothing could be judged. Unreadable, never a target that refused.
fn unmet_welcome(plan: &Plan, reports: &[ConnReport], t: &Tally) -> Option<Judgement> {
    let crate::model::AcceptRule::Message { event } = &plan.oracles.session.accepted else {
        return None;
    };
    if t.accepted > 0 || t.upgraded == 0 || t.valid == 0 {
        return None;
    }
    let (json, kindless, _, _) = records_read(reports);
    // Those the server refused are its verdicts (a single-session server turning away a
    // token's second connection): the rest, all closed by their scripts waiting for the
    // welcome, still accepted nothing.
    let valid = || {
        reports
            .iter()
            .filter(|r| valid_token(plan, r.token))
            .flat_map(|r| &r.attempts)
            .filter(|a| {
                !matches!(
                    a.outcome,
                    Outcome::Aborted | Outcome::Pending | Outcome::Cut | Outcome::Rejected
                )
            })
    };
    if json <= kindless || valid().next().is_none() || !valid().all(closed_unaccepted) {
        return None;
    }
    let rule = match plan.oracles.kinds.iter().find(|k| &k.name == event) {
        Some(kind) => {
            let tests: Vec<String> = kind.when.iter().map(super::frame::describe).collect();
            format!("its `[oracles.kinds]` rule: {}", tests.join(" and "))
        }
        None => format!("read from the field {:?}", plan.oracles.type_field),
    };
    // A kind the scripts' expectations did get, close enough to be what was meant.
    let arrived: BTreeSet<&str> = reports
        .iter()
        .flat_map(|r| &r.counters.expect.events)
        .filter(|(_, tally)| tally.arrived > 0)
        .map(|(kind, _)| kind.as_str())
        .collect();
    let meant = crate::model::words::closest(event, arrived.iter().copied())
        .map_or(String::new(), |k| {
            format!(" (did you mean {k:?}? it arrived)")
        });
    let early_close = closed_before_ack(plan, event);
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the server spoke on every connection it upgraded, but never with {event:?}, the \
             kind `[oracles] accepted` waits for ({rule}){meant}, so the scripts closed {} \
             connection{} unaccepted and nothing was judged: check that kind against what \
             the server sent (the answer line quotes its last message){early_close}",
            valid().count(),
            plural(valid().count() as u64)
        )),
    })
}

/// The clause for an acceptance kind `event` never seen, when it may have come after the
/// scripts closed: every script sends first, none waits for `event`, and none lingers (a
/// `think`, a `pause_reads` gives a late ack time to come). A script that waits for a
/// greeting of another kind names what the server says instead. Empty otherwise.
fn closed_before_ack(plan: &Plan, event: &str) -> String {
    let sends_first = plan.scripts.iter().all(|script| {
        matches!(
            crate::model::deep_steps(script).find(|s| !matches!(s, Step::Repeat { .. })),
            Some(Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. })
        )
    });
    let lingers = plan.scripts.iter().any(|script| {
        crate::model::deep_steps(script)
            .any(|s| matches!(s, Step::Think { .. } | Step::PauseReads { .. }))
    });
    if !sends_first || lingers || misreading::expects_kind(plan, event) {
        return String::new();
    }
    format!(
        "; or it came after the scripts closed: none of them waits for it (an `expect = \
         {event:?}` before their first `send` does)"
    )
}

fn records_read(reports: &[ConnReport]) -> (u64, u64, u64, u64) {
    reports
        .iter()
        .fold((0, 0, 0, 0), |(json, kindless, text, binary), r| {
            (
                json + r.counters.json_records,
                kindless + r.counters.kindless_records,
                text + r.counters.non_json,
                binary + r.counters.binary_frames,
            )
        })
}

/// No connection accepted while `[oracles] accepted` waits for a message kind, and the
/// server answered after the upgrade with records none of which had a kind the scenario
/// reads (binary frames, non-JSON text, JSON without a kind: arrays of records unless
/// `batched`): the welcome may well be among them, so the answers are unreadable, not a
/// target turning the client away (which it would read as). `None` otherwise.
fn unreadable_welcome(
    plan: &Plan,
    reports: &[ConnReport],
    t: &Tally,
    redactor: &Redactor,
) -> Option<Judgement> {
    let crate::model::AcceptRule::Message { event } = &plan.oracles.session.accepted else {
        return None;
    };
    if t.accepted > 0 || t.upgraded == 0 {
        return None;
    }
    let (json, kindless, text, binary) = records_read(reports);
    if json > kindless || text + binary + kindless == 0 {
        return None;
    }
    let (got, check) = unread_parts(
        (text, binary, kindless),
        (
            unread_sample(reports, redactor),
            misreading::kindless_shape(reports, redactor),
        ),
        positional_kind(reports).map(|p| (p, sends_objects(plan))),
        &plan.oracles.type_field,
    );
    Some(Judgement {
        verdict: Verdict::Unreadable,
        hint: Some(format!(
            "the server answered ({}) but not one record had a kind the scenario reads, so no \
             connection was accepted by `[oracles] accepted = {{ message = {event:?} }}`: \
             check {}",
            got.join(", "),
            check.join("; ")
        )),
    })
}

/// Connections were turned away, and their answers named the subprotocol
/// ([`names_subprotocol`]): the offer does not fit the server, whatever the tokens.
fn subprotocol_refused(t: &Tally) -> Judgement {
    Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "no connection was accepted ({}), and the server's answer was about the subprotocol \
             (the answer line says how): nothing was exercised. Check the subprotocols offered \
             (Sec-WebSocket-Protocol: [auth] subprotocol, and a subprotocol placement's \
             `offer`) against those the server speaks",
            top_causes(&t.causes)
        )),
    }
}

/// Connections got through the upgrade but not one valid token's was accepted, and no
/// refusal was an auth code: what the run saw is the server turning this client away (a
/// subprotocol it refuses, a protocol fault right after the 101), not a race. Auth codes
/// stay out: a server may close with 4401 or 1008 as its policy for what the scenario
/// does (a request before its ack), which the session oracles and policy rules judge.
fn none_accepted(reject: &RejectSpec, t: &Tally) -> Option<Judgement> {
    if t.valid == 0 || t.valid_accepted > 0 || t.accepted > 0 {
        return None;
    }
    if t.causes.keys().any(|c| is_auth_refusal(reject, c)) {
        return None;
    }
    // Every first frame too large for this client to read: its limit, not the server's
    // refusal.
    if !t.causes.is_empty() && t.causes.keys().all(|c| *c == Cause::Oversized) {
        return Some(Judgement {
            verdict: Verdict::ClientLimited,
            hint: Some(format!(
                "connections got through the upgrade, but the server's first frames were \
                 larger than [limits] max_message_bytes ({}): this client closed each (1009, \
                 message too big) before it could read one, so nothing was judged. Raise \
                 `[limits] max_message_bytes` if its messages are meant to be that large",
                top_causes(&t.causes)
            )),
        });
    }
    // Its first words were errors: answers to the script's requests it refuses, or a
    // refusal of the connection; either way nothing was served.
    let errors = t.first_error.as_deref().map_or(String::new(), |e| {
        format!(
            "; the server's first words were its error event (the first: {e}), which accepts \
             nothing: if it accepts without a word and these errors answer the script's \
             requests, it refuses the requests (check their format and names), and `[oracles] \
             accepted = \"upgrade\"` lets the run judge the rest"
        )
    });
    Some(Judgement {
        verdict: Verdict::TargetUnusable,
        hint: Some(format!(
            "connections got through the upgrade but the server accepted none ({}): check \
             the subprotocol, the first messages the protocol needs, and the answer line for \
             what the server said{errors}",
            top_causes(&t.causes)
        )),
    })
}

/// How an auth misconfiguration's hint begins when the server refused the upgrade itself
/// while the scenario carries no token on it ([`upgrade_carries_no_token`]): the placement
/// first, since no token reached the server. What else the run adds to such a hint (the
/// development secret in use) goes after it.
pub const UPGRADE_REFUSED_WITHOUT_TOKEN: &str = "the server refused every upgrade as \
     unauthorized while the scenario's tokens travel in the first message after it (or \
     nowhere), so none reached the server";

/// Whether every valid token was refused with an HTTP status (at the upgrade, before any
/// message could carry it) while every connection's placement puts no token on the
/// upgrade (`first_message`, or none): then the signing material may be right and the
/// placement wrong.
fn upgrade_carries_no_token(plan: &Plan, t: &Tally) -> bool {
    let at_upgrade =
        !t.valid_refused.is_empty() && t.valid_refused.keys().all(|c| matches!(c, Cause::Http(_)));
    at_upgrade
        && plan.conns.iter().all(|c| {
            matches!(
                plan.placement_of(c),
                Placement::FirstMessage { .. } | Placement::None
            )
        })
}

/// What a violations verdict's hint says of `violations.jsonl`: a merge whose part lost its
/// file says otherwise in its place.
pub const VIOLATIONS_FILE_HOLDS_ALL: &str =
    "violations.jsonl holds them all when results are written";

/// What an auth misconfiguration's hint adds when every valid token travelled on the
/// upgrade somewhere other than the usual places (the `Authorization` header, a query
/// parameter): the Sec-WebSocket-Protocol offer, a cookie, a header of another name. Many
/// servers read none of those, so the placement is as likely wrong as the signing
/// material. `None` when any valid token went the usual way (then its refusal says the
/// token is wrong), or after the upgrade (see [`UPGRADE_REFUSED_WITHOUT_TOKEN`]).
fn uncommon_placement_note(plan: &Plan) -> Option<String> {
    let mut used: Vec<String> = Vec::new();
    for conn in plan.conns.iter().filter(|c| valid_token(plan, c.token)) {
        let placement = plan.placement_of(conn);
        let uncommon = match placement {
            Placement::Header { name, .. } => !name.eq_ignore_ascii_case("authorization"),
            Placement::Subprotocol { .. } | Placement::Cookie { .. } => true,
            Placement::Query { .. } | Placement::FirstMessage { .. } | Placement::None => false,
        };
        if !uncommon {
            return None;
        }
        let text = door::placement_text(placement);
        if !used.contains(&text) {
            used.push(text);
        }
    }
    (!used.is_empty()).then(|| {
        format!(
            "; the tokens travelled in {} ([auth] placement), where many servers do not \
             look: if the server reads them elsewhere, set `[auth] placement` to where it \
             does (the Authorization header, a query parameter such as ?token=, the first \
             message after the upgrade)",
            used.join(" and ")
        )
    })
}

/// What an auth misconfiguration's hint adds when every valid token travelled the usual
/// way (the Authorization header, or a query parameter): a refusal there most often means
/// the token is wrong, but a server that reads it only elsewhere (only `?token=`, only the
/// header) refuses the same way, as a token missing. `None` when the tokens took
/// several ways (some were then read, and refused: the token is wrong) or another way
/// ([`uncommon_placement_note`], [`UPGRADE_REFUSED_WITHOUT_TOKEN`]).
fn usual_placement_note(plan: &Plan) -> Option<String> {
    let mut valid = plan.conns.iter().filter(|c| valid_token(plan, c.token));
    let first = plan.placement_of(valid.next()?);
    let usual = match first {
        Placement::Header { name, .. } => name.eq_ignore_ascii_case("authorization"),
        Placement::Query { .. } => true,
        _ => false,
    };
    if !usual || valid.any(|c| plan.placement_of(c) != first) {
        return None;
    }
    Some(format!(
        "; or, if the server reads the token elsewhere than {} (it then refuses it as \
         missing), set `[auth] placement` to where it does",
        door::placement_text(first)
    ))
}

/// Every valid token refused with an auth status, and nothing else failed but forged
/// tokens (whose resets or unlisted statuses are rejection hygiene's; a 431 or 414 for the
/// catalogue's oversized token, which a server with a wrong secret gives all the same, is
/// a clean refusal: [`Cause::is_too_large`]). `opaque`: the
/// kind of `[auth] tokens` source the valid tokens came from, when not minted.
fn misconfigured(t: &Tally, opaque: Option<&str>, no_token: bool) -> Option<Judgement> {
    let refused: u64 = t.valid_refused.values().sum();
    let failed_otherwise =
        (t.judged - t.accepted - t.clean_refusals).saturating_sub(t.forged_failed);
    if t.valid == 0 || t.valid_accepted > 0 || refused < t.valid || failed_otherwise > 0 {
        return None;
    }
    if t.subprotocol > 0 {
        // Refused with an auth code (a 1008) whose reason names the subprotocol: the offer,
        // not the token, is what to check.
        return Some(subprotocol_refused(t));
    }
    if t.valid_refused_again == refused {
        // Each refused token had been presented before, and a token presented once was
        // never refused: the server takes each token once, and the scenario shows each
        // twice. Its policy, and nothing here tells a wrong secret from it.
        return Some(Judgement {
            verdict: Verdict::Inconclusive,
            hint: Some(format!(
                "every valid token was refused ({}), each when presented again after an \
                 earlier attempt had shown it to the server (an aborted handshake or a \
                 session): the server takes each token once (replay protection, as single-use \
                 tokens do), so a scenario that presents a token twice cannot judge it; give \
                 each connection its own token, or drop the steps that reuse one",
                refusals_text(t)
            )),
        });
    }
    // With no token on the wire (`placement = "none"`), what was refused is the
    // credentials the script itself sends.
    let (refused_what, check) = if no_token {
        ("every connection".to_string(), NO_TOKEN_CHECK.to_string())
    } else {
        (format!("every {}", our_tokens(opaque)), auth_check(opaque))
    };
    Some(Judgement {
        verdict: Verdict::AuthMisconfigured,
        hint: Some(format!(
            "{refused_what} was refused ({}): {check}",
            refusals_text(t)
        )),
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// How a `violations` hint ends when the violations are to be hunted.
const HUNT: &str = "; hunt for a repro";

/// Whether every violation of the run is an unmet expectation of a connection the server
/// never accepted while the declared exclusivity limit explains it
/// ([`super::shedding::over_the_limit`], whose note the hint then gives): the limit
/// enforced with a close code the scenario does not list, no race a hunt would find.
fn limit_may_explain(e: &Evidence<'_>) -> bool {
    let over = super::shedding::over_the_limit(e.plan, e.reports);
    !over.is_empty()
        && e.by_oracle
            .iter()
            .all(|(o, n)| *n == 0 || *o == OracleKind::Completeness)
        && e.kept
            .iter()
            .all(|v| v.oracle == OracleKind::Completeness && over.contains(&v.conn))
}

/// [`went_away::went_away`]'s judgement, and when the closes were bare 1001s to
/// connections idle alike with nothing pending, what an idle timeout would say too
/// ([`super::idle::undeclared_note`]): a server that closes idle connections by policy
/// closes those opened together at once, as a restart does, and is up again after.
fn went_away_judged(e: &Evidence<'_>) -> Option<Judgement> {
    let mut j = went_away(e.reports, e.by_oracle)?;
    if let Some(hint) = j
        .hint
        .as_mut()
        .filter(|h| h.contains(went_away::ALL_AT_ONCE))
    {
        if let Some(idle) = super::idle::undeclared_note(e.plan, e.reports) {
            hint.push_str("; or an idle timeout: ");
            hint.push_str(&idle);
        }
    }
    Some(j)
}

/// Whether the run's violations are all the server going down saying so: the
/// connections it had open closed at once with a Close that says it is going down (1012,
/// a 1001 with such words, or bare to many), a restart or deploy ([`went_away::went_away`]).
pub fn server_went_away(e: &Evidence<'_>) -> bool {
    went_away::went_away(e.reports, e.by_oracle).is_some()
}

/// Whether the server closed attempts in a way that reads as rate limiting the scenario
/// does not declare ([`super::shedding::undeclared_note`], which the hint then gives), and
/// every violation of the run may be those closes: a liveness one (a valid token refused,
/// a probe turned away), or an expectation its connection's close with one of those codes
/// cut. The refusals may be that policy, which a hunt would only confirm again.
pub fn rate_limiting_may_explain(e: &Evidence<'_>) -> bool {
    let codes = super::shedding::undeclared_codes(e.plan, e.reports);
    if codes.is_empty() {
        return false;
    }
    let cut_by_them = |v: &Violation| {
        v.ended
            .and_then(|end| end.close_code)
            .is_some_and(|code| codes.contains(&code))
    };
    let oracles_may = e
        .by_oracle
        .iter()
        .all(|(o, n)| *n == 0 || matches!(o, OracleKind::Liveness | OracleKind::Completeness));
    oracles_may
        && e.kept.iter().all(|v| match v.oracle {
            OracleKind::Liveness => true,
            OracleKind::Completeness => cut_by_them(v),
            _ => false,
        })
}

/// The hint of a `violations` verdict: the count per oracle that broke, and what to do
/// about them. Shape: `oracles broke (completeness 2, identity 1): …; hunt for a repro`.
/// Expectations among the `kept` violations whose answer came whole after their `within`
/// ran out (`answered_late`) are slowness, not a race: the hint says so, with their
/// deadlines and how late the answers came, instead of sending a user hunting for a repro
/// of them; the others (an answer that never came is a loss) keep the hunt. So do those
/// that missed the same deadline as late answers did, their connection ending (`ends`:
/// each connection's end, [`Violation::conn_end_ms`]) sooner after it than those answers
/// took (`unseen_late`): not seen to come, nor proven lost, they are said apart and sent
/// to no hunt.
pub fn violations_hint(
    by_oracle: &BTreeMap<OracleKind, u64>,
    kept: &[Violation],
    reports: &[ConnReport],
) -> String {
    let parts: Vec<String> = by_oracle
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| format!("{o} {n}"))
        .collect();
    let head = format!(
        "oracles broke ({}): {VIOLATIONS_FILE_HOLDS_ALL}",
        parts.join(", ")
    );
    let total: u64 = by_oracle.values().sum();
    if let Some(note) = every_accepted_reset_note(kept, total, reports) {
        return format!("{head}{note}");
    }
    if let Some(note) = cut_by_run_note(kept, total) {
        return format!("{head}; {note}");
    }
    if let Some(note) = same_refusal_note(kept, total, reports) {
        return format!("{head}; {note}");
    }
    if let Some(note) = missed_everywhere_note(kept, total, reports) {
        return format!("{head}{note}{HUNT}");
    }
    let late: Vec<&Violation> = kept.iter().filter(|v| answered_late(v)).collect();
    if late.is_empty() {
        if let Some(note) = refused_users_note(kept, total, reports) {
            return format!("{head}{note}, hunt for a repro");
        }
        return format!(
            "{head}{}{}{}{}{HUNT}",
            extras_note(kept),
            skips_note(kept),
            repeated_kind_note(kept),
            undeclared_error_note(kept)
        );
    }
    let by_deadline = late_by_deadline(&late);
    let unseen = unseen_late(kept, &by_deadline).len() as u64;
    let n = late.len() as u64;
    let behind = one_behind(kept, &late, &by_deadline, unseen);
    if let Some(Behind { after_ms, lost }) = behind.filter(|b| b.lost > 0) {
        let (are, its) = if n == 1 {
            ("is an answer", "its connection's")
        } else {
            ("are answers", "their connections'")
        };
        let (never, stayed) = if lost == 1 {
            ("never came though its connection", "stayed")
        } else {
            ("never came though their connections", "stayed")
        };
        return format!(
            "{head}; {n} {are} that came late, each only after {its} next request went out \
             (at most {after_ms:.0} ms after it), and {lost} {never} {stayed} open longer than \
             those answers took: that reads as a server answering a request only when the \
             next one comes (one request behind: an answer held until the next read, or each \
             answer carrying the previous request's id) more than as a slow one, and the \
             answers that never came are a loss either way{HUNT}"
        );
    }
    let behind_note = behind.map_or_else(String::new, |b| {
        format!(
            "; each came only after its connection's next request went out (at most {:.0} ms \
             after it): a server that answers one request behind reads the same, and a \
             `think` after the last request longer than those answers took tells the two \
             apart",
            b.after_ms
        )
    });
    let what = format!(
        "(an `expect` whose answer came whole, but after its `within` ran out: {}){}",
        deadlines_text(&by_deadline),
        match unseen {
            0 => String::new(),
            u => format!(
                ", and {u} more missed the same deadline on a connection that ended sooner \
                 than those answers took: not seen to come, nor proven lost"
            ),
        }
    );
    let slow = "slowness, not a race: raise `within` if it is stricter than the server's \
                objective, or find what slows the server";
    if n + unseen >= total {
        return format!(
            "{head}; every one is an answer that came late {what}: {slow}{behind_note}"
        );
    }
    let are = if n == 1 {
        "is an answer that came late"
    } else {
        "are answers that came late"
    };
    format!(
        "{head}; hunt for a repro of those that are not late answers; {n} {are} {what}: \
         {slow}{behind_note}"
    )
}

/// The note on kept violations whose request was answered, correlated with it, only with
/// one kind whose name says no (`err`, `subscribe_failed`: [`Misread::OtherKinds`]) that
/// the scenario does not declare as its error event: a refusal the server may give by
/// policy (a room full), which declared reads as an answer, counted and no violation.
/// Said before the hunt, which would only find it again; empty when there are none.
fn undeclared_error_note(kept: &[Violation]) -> String {
    let mut refused: BTreeMap<&str, u64> = BTreeMap::new();
    for v in kept.iter().filter(|v| v.correlation.is_some()) {
        if let Some(Misread::OtherKinds { came, .. }) = &v.misread {
            if let [kind] = came.as_slice() {
                if misreading::names_a_refusal(kind) {
                    *refused.entry(kind.as_str()).or_default() += 1;
                }
            }
        }
    }
    let Some((kind, n)) = refused.iter().max_by_key(|(_, n)| **n) else {
        return String::new();
    };
    let of_them = match *n {
        n if n as usize == kept.len() => "every one was".to_string(),
        1 => "one of them was".to_string(),
        n => format!("{n} of them were"),
    };
    format!(
        "; {of_them} answered, correlated with its request, with {kind:?}, a kind whose name \
         says no: if that is the server's error answer (a refusal it may give by policy), \
         declare `[oracles] error_event = {kind:?}` and those read as answers it gave, \
         counted, not violations; if the server should have served those requests, they \
         are its refusals"
    )
}

/// When every violation (all kept: `total` of them) is a checked answer that said no (a
/// `where` test on a field it held another value at: [`Misread::WrongValue`]) at one step,
/// all holding one value, on at least two connections, which are every connection that had
/// an expectation at that step met ([`ConnReport::met_steps`]): the server took the request
/// once and refused it the same way every time after, on every connection. Deterministic,
/// no race:
/// a script that sends again what the server takes once (an id fixed in a `repeat`:
/// Web PubSub's `Duplicate` ack), or a server that refuses every repeat. The hint says
/// both and sends no one hunting. `None` otherwise, and without the reports (a merge).
fn same_refusal_note(kept: &[Violation], total: u64, reports: &[ConnReport]) -> Option<String> {
    if kept.len() < 2 || kept.len() as u64 != total {
        return None;
    }
    fn refusal(v: &Violation) -> Option<(&str, &str, &str, &str)> {
        match &v.misread {
            Some(Misread::WrongValue { path, held, .. }) => Some((
                v.group.as_str(),
                v.step.as_deref()?,
                path.as_str(),
                held.as_deref()?,
            )),
            _ => None,
        }
    }
    let first = refusal(kept.first()?)?;
    if !kept.iter().all(|v| refusal(v) == Some(first)) {
        return None;
    }
    let (_, step, path, held) = first;
    let place = crate::model::StepPlace::of(
        &step
            .split('.')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()
            .ok()?,
    );
    // Every connection served at that step was refused there after, and only those: a
    // refusal some of them met and others not may be a race's.
    let conns: BTreeSet<u32> = kept.iter().map(|v| v.conn).collect();
    let served_there: BTreeSet<u32> = reports
        .iter()
        .filter(|r| r.met_steps & place.bloom_bit() != 0)
        .map(|r| r.id)
        .collect();
    if conns.len() < 2 || conns != served_there {
        return None;
    }
    let why = kept
        .first()
        .and_then(|v| v.seen.split_once(", and "))
        .map_or(String::new(), |(_, why)| format!(", {why}"));
    Some(format!(
        "every one is the same refusal at step {step} ({path} = {held}{why}) on each of {} \
         connections, after that step's request had been served there: deterministic, not a \
         race to hunt. Either the script sends again what the server takes once (an id \
         fixed inside a `repeat`: draw it per iteration, `{{{{run}}}}` or `{{{{uuid}}}}`), \
         or the server refuses every repeat of it (a bug to fix, not to hunt)",
        conns.len()
    ))
}

/// When every violation (all kept: `total` of them) is a deadline missed with no answer
/// seen on a connection the run's own end cut sooner after it than its `within`
/// ([`Violation::cut_by_run_ms`]): none is proven lost (a slow server's answers may have
/// been on their way), so the hint sends no one hunting, and says what tells slowness
/// from loss. `None` otherwise.
fn cut_by_run_note(kept: &[Violation], total: u64) -> Option<String> {
    if kept.is_empty() || kept.len() as u64 != total {
        return None;
    }
    let most = kept
        .iter()
        .map(|v| v.cut_by_run_ms)
        .try_fold(0.0_f64, |most, cut| cut.map(|c| most.max(c)))?;
    let n = kept.len() as u64;
    let (every, was) = if n == 1 {
        ("the one violation is a deadline", "its connection")
    } else {
        ("every one is a deadline", "their connections")
    };
    Some(format!(
        "{every} missed with no answer seen, and the run's end cut {was} at most {most:.0} \
         ms after it, sooner than the `within` it missed: not seen to come, nor proven lost \
         (a slow server's answer may have been on its way). A run that goes on past its \
         last deadline (a longer duration, or a `think` after the last request) tells \
         slowness from a loss; `hunt` writes no repro of these"
    ))
}

/// When the server reset (dropped without a Close) every attempt it accepted, at least
/// two, and every violation of the run (all kept: `total` of them) is an expectation of a
/// connection those resets cut: a server that fails each connection alike (a crash, a
/// proxy's timeout, a handler that throws), which every round of a hunt would show again.
/// The hint says so and sends the user to why the server drops connections, not to a
/// hunt. `None` otherwise, and without the connections' reports (a merge of results
/// files) to tell.
fn every_accepted_reset_note(
    kept: &[Violation],
    total: u64,
    reports: &[ConnReport],
) -> Option<String> {
    if kept.is_empty() || kept.len() as u64 != total {
        return None;
    }
    let cut_by_reset = |v: &Violation| {
        v.oracle == OracleKind::Completeness && v.ended.is_some_and(|end| end.close_code.is_none())
    };
    if !kept.iter().all(cut_by_reset) {
        return None;
    }
    let accepted: Vec<&Attempt> = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.outcome == Outcome::Accepted)
        .collect();
    let n = accepted.len();
    if n < 2 || !accepted.iter().all(|a| a.cause == Some(Cause::Reset)) {
        return None;
    }
    Some(format!(
        "; the server reset every connection it accepted ({n} of {n}), without a Close, \
         and every violation is an expectation those resets cut: a server that fails each \
         connection alike (a crash, a proxy's idle timeout, a handler that throws), not a \
         race; every round of a hunt would show it again. Look at why the server drops \
         its connections (its logs, what sits between it and this client)"
    ))
}

/// When every violation of the run (all kept: `total` of them) is an expectation whose
/// deadline ran out on at least two connections, each waiting for a kind that no
/// connection of the run ever got (none of the `N` expected came), and none saw other
/// kinds come correlated instead (what [`misreading`]'s own note says): every connection
/// missed it alike. The server never sends it to this script (a topic or destination it
/// does not publish to: the script needs fixing) or loses it every time (a race every
/// connection loses, alone too); the hint says both, so that a misconfiguration is not
/// hunted as a race only. `None` otherwise, and without the connections' reports.
fn missed_everywhere_note(
    kept: &[Violation],
    total: u64,
    reports: &[ConnReport],
) -> Option<String> {
    if kept.is_empty() || kept.len() as u64 != total || reports.is_empty() {
        return None;
    }
    let unmet = |v: &Violation| {
        v.oracle == OracleKind::Completeness
            && v.window_ms.is_some()
            && !matches!(v.misread, Some(Misread::OtherKinds { .. }))
    };
    if !kept.iter().all(unmet) {
        return None;
    }
    let events = sum_counters(reports).expect.events;
    let never: BTreeMap<&str, u64> = events
        .iter()
        .filter(|(_, t)| t.expected >= 2 && t.arrived == 0)
        .map(|(kind, t)| (kind.as_str(), t.expected))
        .collect();
    // The kinds each violation still waited for, as its `expected` names them.
    let kinds: BTreeSet<&str> = kept
        .iter()
        .map(|v| waited_never(v, &never))
        .collect::<Option<_>>()?;
    let connections: BTreeSet<u32> = kept.iter().map(|v| v.conn).collect();
    if connections.len() < 2 {
        return None;
    }
    let said: Vec<String> = kinds
        .iter()
        .map(|k| {
            format!(
                "{k:?} (0 of {} expected)",
                never.get(k).copied().unwrap_or(0)
            )
        })
        .collect();
    Some(format!(
        "; no connection ever got {}: all {} connections that waited for it missed it \
         alike. Either the server never sends it to this script (a topic or destination \
         it does not publish to, a kind it names otherwise: the script needs fixing, and \
         violations.jsonl's `seen` says what came instead) or it loses it every time (a \
         race every connection loses, on its own too: a repro then fails on one \
         connection)",
        said.join(", "),
        connections.len()
    ))
}

/// The first kind violation `v` still waited for (its `expected` names them) that is
/// among `never`'s.
fn waited_never<'v>(v: &'v Violation, never: &BTreeMap<&str, u64>) -> Option<&'v str> {
    let pattern = v.expected.split(" within ").next().unwrap_or_default();
    pattern
        .split_whitespace()
        .map(|w| w.trim_end_matches(['+', '*', '?']))
        .find(|w| never.contains_key(w))
}

/// When every violation of the run (all kept: `total` of them) is a checked answer that
/// said no in the same words (`status` held `"forbidden"` where `"ok"` was wanted), on
/// some users' connections only, none of which had the same step's test pass at another
/// try: what a server refusing those users by policy shows too (a room some users may not
/// post to), which is no race. Said beside the hunt, not instead of it: a race may also
/// refuse the same way each time. `None` otherwise, and without the connections' reports
/// (a merge of results files) to tell.
/// Whether a field's value (JSON text, `"ok"`) reads as a yes: ok, success, true,
/// accepted, granted, allowed.
fn reads_as_yes(value: &str) -> bool {
    let v = value.trim_matches('"').to_lowercase();
    matches!(
        v.as_str(),
        "ok" | "success" | "succeeded" | "true" | "accepted" | "granted" | "allowed" | "joined"
    )
}

/// Whether a field's value (JSON text) reads as a refusal: error, denied, forbidden,
/// unauthorized, refused, rejected, false.
fn reads_as_no(value: &str) -> bool {
    let v = value.trim_matches('"').to_lowercase();
    matches!(
        v.as_str(),
        "error"
            | "denied"
            | "forbidden"
            | "unauthorized"
            | "unauthorised"
            | "refused"
            | "rejected"
            | "false"
            | "failed"
            | "failure"
    )
}

fn refused_users_note(kept: &[Violation], total: u64, reports: &[ConnReport]) -> Option<String> {
    if kept.is_empty() || kept.len() as u64 != total || reports.is_empty() {
        return None;
    }
    let mut said = BTreeSet::new();
    for v in kept {
        let s = misreading::said_no(v)?;
        said.insert((s.path, s.held?, s.wanted));
    }
    let [(path, held, wanted)] = said.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let passed_there = |v: &Violation| {
        reports
            .iter()
            .filter(|r| r.id == v.conn)
            .any(|r| r.counters.expect.checked_met.passed_at(v.step.as_deref()))
    };
    if kept.iter().any(passed_there) {
        return None;
    }
    let users: BTreeSet<u32> = kept.iter().map(|v| v.user).collect();
    let shown: Vec<String> = users.iter().take(5).map(u32::to_string).collect();
    let more = users.len().saturating_sub(shown.len());
    let to_users = format!(
        "{} ({}{})",
        crate::model::words::plural(users.len() as u64, "user"),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    // The other way round: a yes where the scenario wanted a refusal (a join to another
    // user's private topic answered "ok"): no policy of refusing, a door left open.
    if reads_as_yes(held) && wanted.is_some_and(reads_as_no) {
        let wanted = wanted.unwrap_or_default();
        return Some(format!(
            "; every one is a checked answer that said yes where the scenario wanted a \
             refusal (`{path}` held {held} where {wanted} was wanted), to {to_users}: if \
             those users must be refused, the server let them in (an authorization bypass, \
             a race if it does so only sometimes)"
        ));
    }
    let wanted = wanted.map_or(String::new(), |w| format!(" where {w} was wanted"));
    Some(format!(
        "; every one is a checked answer that said no in the same words (`{path}` held \
         {held}{wanted}), to {to_users}: a server that refuses those users by policy reads \
         the same, and is no race (leave them out of the scenario); if it should serve them"
    ))
}

/// When every kept violation is a sequence number that skipped ahead (`seq = 5` where
/// `seq = 4` was due), none a repeat or a step back: a note that a protocol promising
/// only an increasing number is declared with `contiguous = false` (a server that also
/// counts what it receives skips on every connection, and is no race). Empty otherwise.
/// Reads the `expected`/`seen` the sequence oracle writes (`FIELD = N`).
fn skips_note(kept: &[Violation]) -> String {
    let skip = |v: &Violation| -> Option<(String, i64, i64)> {
        if v.oracle != OracleKind::Ordering {
            return None;
        }
        let (field, due) = v.expected.rsplit_once(" = ")?;
        let (seen_field, got) = v.seen.rsplit_once(" = ")?;
        let (due, got) = (due.parse::<i64>().ok()?, got.parse::<i64>().ok()?);
        (field == seen_field && got > due).then(|| (field.to_string(), due, got))
    };
    let skips: Option<Vec<(String, i64, i64)>> = kept.iter().map(skip).collect();
    let Some((field, due, got)) = skips.and_then(|s| s.into_iter().next()) else {
        return String::new();
    };
    format!(
        "; every ordering violation is a skipped number ({field} = {got} where {due} was due), \
         none a repeat or a step back: if the protocol promises only an increasing {field}, not \
         one counted by one, declare `[oracles] sequence = {{ field = \"{field}\", contiguous = \
         false }}`"
    )
}

/// When an out-of-order violation saw a kind come again right after itself where its
/// pattern names it once (`expected next complete in order … seen next next`): the
/// server may send several for a request (a stream's ticks), which the pattern must allow
/// (`next+ complete`), as the hint then says. Empty otherwise.
fn repeated_kind_note(kept: &[Violation]) -> String {
    let repeated = kept.iter().find_map(|v| {
        let (pattern, _) = v.expected.split_once(" in order (still to come: ")?;
        let mut seen = v.seen.split_whitespace().rev();
        let (last, before) = (seen.next()?, seen.next()?);
        let once = pattern.split_whitespace().any(|item| item == last);
        (last == before && once).then_some((last, pattern))
    });
    let Some((kind, pattern)) = repeated else {
        return String::new();
    };
    let allowed: Vec<String> = pattern
        .split_whitespace()
        .map(|item| match item == kind {
            true => format!("{item}+"),
            false => item.to_string(),
        })
        .collect();
    format!(
        "; `{kind}` came again right after itself where the pattern `{pattern}` has it once: \
         if the server sends several for a request (a stream), allow them (`{}`)",
        allowed.join(" ")
    )
}

/// When every kept violation is a record that came for a request already answered in
/// full ([`ANSWERED_IN_FULL`](crate::oracle::ANSWERED_IN_FULL)) or with the error event
/// ([`ANSWERED_WITH_ERROR`](crate::oracle::ANSWERED_WITH_ERROR)): what they may be, a
/// duplicate delivery or a stream the pattern cuts short, and how to say the latter
/// (`next+`). Empty otherwise.
fn extras_note(kept: &[Violation]) -> String {
    use crate::oracle::{ANSWERED_IN_FULL, ANSWERED_WITH_ERROR};
    let extra = |v: &Violation| {
        v.oracle == OracleKind::Completeness
            && (v.expected == ANSWERED_IN_FULL || v.expected == ANSWERED_WITH_ERROR)
    };
    if kept.is_empty() || !kept.iter().all(extra) {
        return String::new();
    }
    let kinds: BTreeSet<&str> = kept.iter().map(|v| v.seen.as_str()).collect();
    let shown: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
    let example = kinds.iter().next().copied().unwrap_or("next");
    let errored = kept
        .iter()
        .filter(|v| v.expected == ANSWERED_WITH_ERROR)
        .count();
    let ended = if errored == 0 {
        "whose pattern was already met in full"
    } else if errored == kept.len() {
        "already answered with an error"
    } else {
        "whose pattern was already met in full (or that was answered with an error)"
    };
    format!(
        "; every one is a record ({}) that came for a request {ended}: a duplicate delivery, \
         or, if the server streams more than one for a request (a subscription's events until \
         it is cancelled), a pattern that must allow them (`{example}+`); one that allows them \
         already took them up to its end: these came after it (a `{example}` after the \
         record that ended the request), the server's doing",
        shown.join(", ")
    )
}

/// When every violation of the run comes from what calibration learned (`learned.toml`),
/// none from the scenario's own steps or the session oracles: what that rests on. An
/// invariant learned from a few connections, one user at a time, may not hold under load
/// for reasons of the server's own (a room's broadcast carrying the sender's id).
fn learned_only_note(
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Option<String> {
    let streaming: u64 = reports
        .iter()
        .flat_map(|r| r.violations_by_oracle.values())
        .sum();
    let total: u64 = by_oracle.values().sum();
    let kept: Vec<&Violation> = reports.iter().flat_map(|r| &r.violations).collect();
    let all_learned = streaming == total && !kept.is_empty() && kept.iter().all(|v| v.learned);
    // What may make a learned invariant wrong for this server, by the oracles it broke.
    let identity = kept.iter().any(|v| v.oracle == OracleKind::Identity);
    let ordering = kept.iter().any(|v| v.oracle == OracleKind::Ordering);
    let why = match (identity, ordering) {
        (true, true) => {
            " (a broadcast may carry another user's id; a counter may be shared \
                         across connections)"
        }
        (true, false) => " (a broadcast may carry another user's id)",
        (false, true) => " (a counter may be shared across connections or restart per request)",
        (false, false) => "",
    };
    all_learned.then(|| {
        format!(
            "every violation is of an invariant calibration learned, marked (learned), none \
             of the scenario's own: check that it holds for this server{why}, then declare it \
             in [oracles] or drop it from learned.toml (or run with --no-learn)"
        )
    })
}

fn incomplete_hint(stopped: StopReason) -> String {
    match stopped {
        StopReason::Interrupted => "interrupted before the plan finished: partial results".into(),
        StopReason::Unreachable => "the target refused every TCP connection of the run's first \
              attempts, and the run stopped early: what did not run proves nothing"
            .into(),
        StopReason::AuthRefused => "the target refused the upgrades of the run's first valid \
              tokens, and the run stopped early: what did not run proves nothing"
            .into(),
        StopReason::NotFound => "the target answered the run's first upgrades 404 or 410, and \
              the run stopped early: what did not run proves nothing"
            .into(),
        StopReason::CertificateRefused => "the run's first TLS handshakes refused the target's \
              certificate, and the run stopped early: what did not run proves nothing"
            .into(),
        StopReason::UpgradeUnanswered => "the target answered none of the run's first \
              upgrades within handshake_timeout, and the run stopped early: what did not run \
              proves nothing"
            .into(),
        StopReason::ClosedUnaccepted => "the target closed the connections of the run's \
              first valid tokens before accepting them, and the run stopped early: what did \
              not run proves nothing"
            .into(),
        _ => "the duration ran out before the plan finished: what did not run proves nothing \
              (raise `duration` or shorten the plan)"
            .into(),
    }
}

/// `http_401 ×200, reset ×3` (the three most frequent).
/// The one cause every attempt of the run that ended with one ended by, when there is one
/// (`None` when two differ, or none has a cause).
fn only_cause(reports: &[ConnReport]) -> Option<&Cause> {
    let mut causes = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .filter_map(|a| a.cause.as_ref());
    let first = causes.next()?;
    causes.all(|c| c == first).then_some(first)
}

fn top_causes(causes: &BTreeMap<Cause, u64>) -> String {
    let mut sorted: Vec<(&Cause, &u64)> = causes.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = sorted
        .iter()
        .take(3)
        .map(|(c, n)| format!("{c} ×{n}"))
        .collect();
    if parts.is_empty() {
        "no answer".into()
    } else {
        parts.join(", ")
    }
}

mod late;
mod misreading;
mod scripted;
mod went_away;
pub use late::late_answers;
use late::{answered_late, deadlines_text, late_by_deadline, one_behind, unseen_late, Behind};
pub use misreading::misspelled;
use misreading::{
    answered_only_errors, answered_otherwise_everywhere, broke_the_protocol, capture_never_found,
    closed_on_request, identity_misnamed, misread, never_arrived_note, positional_kind,
    said_no_everywhere, same_fault_everywhere, sends_objects, sequence_per_misnamed,
    stopped_reading_everywhere, stopped_reading_note, unmet_over_unread, unread_parts,
    unread_sample, unreadable, value_slip,
};
use went_away::{went_away, went_down, went_down_after_all};
mod door;
pub use door::refused_in_band_anywhere;
mod unanswered;
mod unjudged;
mod unreached;
pub use unjudged::{
    after_unjudged_note, first_unjudged, unjudged_note, unjudged_note_of, unjudged_places,
};

#[cfg(test)]
mod tests;
