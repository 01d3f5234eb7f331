//! The compact console summary.

use crate::model::words::plural;
use crate::model::{Answer, Cause, StopReason, Verdict};
use crate::model::{LearnedOracles, Phase, SEQUENCE_SET_ASIDE_WHY};
use crate::results::Summary;
use std::io::{self, Write};

/// Renders the summary table; volatile values (times) are formatted, never reordered.
/// A planned duration in seconds as short as it is exact: `60s`, `0.3s`, `1.25s` (to the
/// millisecond).
fn planned_seconds(ms: f64) -> String {
    let text = format!("{:.3}", ms / 1000.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "0" && ms > 0.0 {
        // Under a millisecond (`--duration 1us`): said as set, not as "0s".
        return format!("{:?}", std::time::Duration::from_secs_f64(ms / 1000.0));
    }
    format!("{text}s")
}

pub fn render<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    // Said on the first line: a run against a planted race reads as a broken server.
    let target_note = match (s.planted_words(), s.embedded_target) {
        (Some(planted), _) => format!(" (embedded reference server with {planted})"),
        (None, true) => " (embedded reference server)".to_string(),
        (None, false) => String::new(),
    };
    writeln!(
        w,
        "stampede {} · {} · seed {} · {}{}",
        s.tool_version,
        s.scenario,
        s.seed,
        // Results written before passwords were masked may still hold one.
        crate::model::url::shown_url(&s.target),
        target_note
    )?;
    let split = s
        .parts_shown()
        .map_or_else(String::new, |parts| format!(" · {parts}"));
    writeln!(
        w,
        "ran {:.2}s of {} ({}) · {} planned{split}",
        s.elapsed_ms / 1000.0,
        planned_seconds(s.duration_ms),
        stop_shown(s.stopped),
        plural(s.connections_planned as u64, "connection")
    )?;
    let c = &s.counters;
    // The rest of `attempted`, shown when there is any, so the line always adds up:
    // ours (aborted on purpose), the run's end (cut), the client's own limits.
    let mut rest = String::new();
    for (label, n) in [
        ("aborted", c.aborted),
        ("cut", c.cut),
        ("client errors", c.client_errors),
    ] {
        if n > 0 {
            rest.push_str(&format!("  {label} {n}"));
        }
    }
    // `accepted` is the scenario's acceptance (a first message, an ack), not the 101: a
    // refusal that came after a successful upgrade says so, or "rejected" reads as
    // upgrades the server turned away.
    let in_band = match c.rejected_in_band {
        0 => String::new(),
        n if n == c.rejected => " (in band: upgrade accepted, then refused)".to_string(),
        n => format!(" ({n} of them in band: upgrade accepted, then refused)"),
    };
    writeln!(
        w,
        "\nconnections  attempted {}  accepted {}  rejected {}{in_band}  failed {}{rest}",
        c.attempted, c.accepted, c.rejected, c.failed
    )?;
    // More attempts than connections: a `reconnect` step or a retry is an attempt of its
    // own, which the header's planned count alone leaves unexplained.
    if c.attempted > s.connections_planned as u64 {
        writeln!(
            w,
            "  {:<13}{} attempts for {}: reconnects and retries are attempts of their own",
            "attempts",
            c.attempted,
            plural(s.connections_planned as u64, "connection")
        )?;
    }
    // `refused_by` holds every attempt that did not get in: refusals (an HTTP answer) and
    // failures (connect, TLS, timeouts) alike.
    // What the run's own end cut is counted as `interrupted` (summary.json's key), which
    // reads as Ctrl-C: said as the run's end unless Ctrl-C was what ended it.
    let cut_by = |cause: &crate::model::Cause| match cause {
        crate::model::Cause::Interrupted if s.stopped != crate::model::StopReason::Interrupted => {
            "run_end".to_string()
        }
        other => other.to_string(),
    };
    for (label, map) in [("not accepted", &c.refused_by), ("ended by", &c.ended_by)] {
        if !map.is_empty() {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} {v}", cut_by(k)))
                .collect();
            writeln!(w, "  {label:<13}{}", parts.join("  "))?;
        }
    }
    // Load shedding is counted among the rejected (and by cause above) and said apart:
    // the server's "not now", never a violation. Worded for a restart too: its 503s are
    // counted here, and the verdict's note says which it was.
    if c.shed > 0 {
        writeln!(
            w,
            "  {:<13}{} (HTTP 429/503, close 1013 or a reject.shed code: shed under load, or \
             refused while the server went down; not a violation)",
            "shed", c.shed
        )?;
    }
    // Counted among the accepted (and by cause under "ended by") and said apart.
    if c.shed_after_acceptance > 0 {
        writeln!(
            w,
            "  {:<13}{} accepted (close 1013 or a reject.shed code: load shedding, their \
             pending expectations refused, not violations)",
            "shed later", c.shed_after_acceptance
        )?;
    }
    // Counted among the accepted (or, before acceptance, the rejected) and said apart.
    if c.replaced > 0 {
        writeln!(
            w,
            "  {:<13}{} (a reject.replaced code: another connection of the token took over, \
             their pending expectations refused, not violations)",
            "replaced", c.replaced
        )?;
    }
    // Counted among the accepted (by code under "ended by") and said apart.
    if c.closed_idle > 0 {
        writeln!(
            w,
            "  {:<13}{} accepted (idle past the declared idle_timeout: the server's idle \
             policy, their unrun steps not violations)",
            "closed idle", c.closed_idle
        )?;
    }
    // Counted among the accepted (by code under "ended by") and said apart.
    if c.closed_at_lifetime > 0 {
        writeln!(
            w,
            "  {:<13}{} accepted (at the declared max_lifetime: the server's connection \
             lifetime policy, their unrun steps not violations)",
            "lifetime", c.closed_at_lifetime
        )?;
    }
    // Counted by how they ended above (accepted, rejected or failed) and said apart.
    if c.expired > 0 {
        writeln!(
            w,
            "  {:<13}{} closed or refused after their token's exp (the scenario's ttl ran \
             out before its script: not findings)",
            "expired", c.expired
        )?;
    }
    if let Some(line) = unanswered_closes_line(c) {
        writeln!(w, "  {:<13}{line}", "closes")?;
    }
    if c.attempts_not_kept > 0 {
        // Said where the counts are read: the session oracles and the notes judged only
        // the attempts each connection kept ([`crate::model::keep_attempt`]).
        writeln!(
            w,
            "  {:<13}{} of a long reconnect loop counted above, their details not kept \
             (each connection keeps its first {} and latest {}): the session oracles judged \
             the attempts kept",
            "not kept",
            plural(c.attempts_not_kept, "attempt"),
            crate::model::ATTEMPTS_KEPT_FIRST,
            crate::model::ATTEMPTS_KEPT_LATEST,
        )?;
    }
    writeln!(
        w,
        "messages     sent {}  received {}  ({:.1}/s received)",
        c.messages_sent, c.messages_received, s.received_per_sec
    )?;
    if c.in_band_answers > 0 {
        writeln!(
            w,
            "  answered   {} in-band pings ([[answer]]; not in sent)",
            c.in_band_answers
        )?;
    }
    if let Some(line) = late_sends_line(c) {
        writeln!(w, "  late       {line}")?;
    }
    if c.non_json + c.binary_frames + c.expect.buffer_overflows > 0 {
        writeln!(
            w,
            "  findings   non-JSON {}  binary {}  buffer overflows {} ({} bytes dropped)",
            c.non_json, c.binary_frames, c.expect.buffer_overflows, c.expect.buffer_overflow_bytes
        )?;
    }
    render_phases(s, w)?;
    render_events(s, w)?;
    render_violations(s, w)?;
    if !s.learned.is_empty() || s.learned.unaccepted.is_some() {
        writeln!(w, "{}", learned_line(&s.learned))?;
    }
    if let Some(short) = replies_short_words(&c.expect.learned_replies_short) {
        writeln!(w, "learned      {short}")?;
    }
    if let Some(note) = lenient_note(s) {
        writeln!(w, "lenient      {note}")?;
    }
    for b in &s.barriers {
        render_barrier(b, w)?;
    }
    if s.releases_raised == Some(false) && !s.barriers.is_empty() {
        writeln!(
            w,
            "release      threads at the default priority: a server on this machine can interrupt a release (see docs/hunting.md, \"How the release is kept tight\")"
        )?;
    }
    if s.probe.tokens > 0 {
        writeln!(w, "probe        {}", probe_line(&s.probe))?;
    }
    render_answers(s, w)?;
    let g = &s.generator;
    let verdict = if g.fell_behind && s.timed_anything() {
        "FELL BEHIND: timings are not trustworthy"
    } else if g.fell_behind {
        "FELL BEHIND: connections started late; no latency was measured"
    } else {
        "on schedule"
    };
    writeln!(
        w,
        "\ngenerator lag p50 {:.3}ms  p99 {:.3}ms  max {:.3}ms  ({verdict})",
        g.lag_p50_ms, g.lag_p99_ms, g.lag_max_ms
    )?;
    if let Some(line) = client_stalls_line(&g.client_stalls) {
        writeln!(w, "client stalls {line}")?;
    }
    render_thresholds(s, w)?;
    render_verdict(s, w)
}

/// Paced sends that went out late, after `late`: the offered load fell short of the plan
/// (k6's dropped iterations), and why when the server's backlog held them; `None` when
/// none did.
pub(crate) fn late_sends_line(c: &crate::model::Counters) -> Option<String> {
    if c.late_sends == 0 {
        return None;
    }
    let held = match c.sends_held_in_flight {
        0 => String::new(),
        n if n >= c.late_sends => {
            ", held at [limits] max_in_flight while the server owed that many answers".into()
        }
        n => format!(
            ", {n} of them held at [limits] max_in_flight while the server owed that many \
             answers"
        ),
    };
    Some(format!(
        "{} of {} sent more than 5 ms after their paced instant{held}: the offered rate fell \
         short of the plan (their turns count from the instant)",
        c.late_sends, c.messages_sent
    ))
}

/// The client's stalls (the runtime could not keep time), after `client stalls`:
/// `34  longest 1071ms  total 14641ms  (…)`; `None` when there were none.
pub(crate) fn client_stalls_line(stalls: &crate::model::ClientStalls) -> Option<String> {
    (stalls.count > 0).then(|| {
        format!(
            "{}  longest {:.0}ms  total {:.0}ms  (the client could not keep time: an \
             overloaded or throttled machine, or a runtime too busy)",
            stalls.count, stalls.longest_ms, stalls.total_ms
        )
    })
}

/// What the run's summary says beside its tables, as the console says it: what
/// calibration learned, replies short of it, the probes after the run, the client's
/// stalls; each as (label, text). The HTML report shows them as the console does.
pub(crate) fn run_notes(s: &Summary) -> Vec<(&'static str, String)> {
    let mut notes = Vec::new();
    if !s.learned.is_empty() || s.learned.unaccepted.is_some() {
        notes.push(("learned", learned_words(&s.learned)));
    }
    if let Some(words) = replies_short_words(&s.counters.expect.learned_replies_short) {
        notes.push(("learned", words));
    }
    if s.probe.tokens > 0 {
        notes.push(("probe", probe_line(&s.probe)));
    }
    if let Some(line) = client_stalls_line(&s.generator.client_stalls) {
        notes.push(("client stalls", line));
    }
    if let Some(line) = late_sends_line(&s.counters) {
        notes.push(("late sends", line));
    }
    notes
}

/// How the probes ended. Each ends one of four ways: say them all, so that a probe
/// nobody answered does not read as a reconnect that worked, and one the server shed (its
/// policy: "not now") does not read as one it never answered.
fn probe_line(p: &crate::results::ProbeSummary) -> String {
    let accepted = p
        .tokens
        .saturating_sub(p.refused)
        .saturating_sub(p.inconclusive);
    // With no token on the wire, a probe is a connection tried again, not a token.
    let what = if p.no_token { "connection" } else { "token" };
    let mut line = format!(
        "{} tried again after the run: {accepted} accepted, {} refused",
        plural(p.tokens as u64, what),
        p.refused
    );
    if p.refused_by_policy > 0 {
        line.push_str(&format!(
            " ({} with \"who are you\": the server takes a token once or revokes it when \
             its session closes, its policy, not a session still held)",
            p.refused_by_policy
        ));
    }
    if p.refused_expired > 0 {
        line.push_str(&format!(
            " ({} after their token expired: the scenario's `ttl` ran out, which proves \
             nothing about sessions)",
            p.refused_expired
        ));
    }
    let shed = p.shed.min(p.inconclusive);
    if shed > 0 {
        let how = if p.shed_by.is_empty() {
            String::new()
        } else {
            format!(": {}", p.shed_by.join(", "))
        };
        line.push_str(&format!(
            ", {shed} shed by the server{how} (shedding is policy, not an answer: those probes prove nothing)"
        ));
    }
    let unanswered = p.inconclusive - shed;
    if unanswered > 0 {
        line.push_str(&format!(
            ", {unanswered} unanswered or cut (proving nothing)"
        ));
    }
    line
}

/// What the server said instead of a 101 (its status line and the first bytes of its
/// body) or instead of accepting (its Close: code and reason).
/// The line that says the server left Closes of ours unanswered
/// ([`crate::model::Counters::close_unanswered`]): a protocol fault of the server's, never a race, so
/// said plainly beside how the connections ended, and no violation. `None` when it
/// answered every one.
fn unanswered_closes_line(c: &crate::model::Counters) -> Option<String> {
    let unanswered = c.close_unanswered;
    if unanswered == 0 {
        return None;
    }
    // Every Close we sent that the server did not end first: the attempts that ended by
    // our close code, answered or not.
    let sent: u64 = c
        .ended_by
        .iter()
        .chain(&c.refused_by)
        .filter(|(cause, _)| matches!(cause, Cause::ClientClose(_)))
        .map(|(_, n)| n)
        .sum::<u64>()
        .max(unanswered);
    let answered = if unanswered == sent {
        format!("none of {}", plural(sent, "Close"))
    } else {
        format!("{} of {sent} Closes ({unanswered} not)", sent - unanswered)
    };
    Some(format!(
        "the server answered {answered} within 2s (RFC 6455 §5.5.1: it must answer a \
         Close): the client dropped those connections; not a violation"
    ))
}

fn render_answers<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    for a in &s.answers {
        let text = answer_text(a);
        writeln!(w, "answer       {}: {}{text}", a.cause, a.detail)?;
    }
    Ok(())
}

/// The text an answer carried, labelled for what it is: a Close frame's reason, quoted
/// (`  reason: "too many requests"`), or an HTTP answer's body; empty when it had none.
fn answer_text(a: &Answer) -> String {
    if a.body.is_empty() {
        return String::new();
    }
    match a.cause {
        Cause::ServerClose(_) | Cause::InvalidClose(_) => format!("  reason: \"{}\"", a.body),
        _ => format!("  body: {}", a.body),
    }
}

/// One line per breach; a single line when every threshold held.
fn render_thresholds<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    if s.thresholds.is_empty() {
        return Ok(());
    }
    if s.thresholds.iter().all(|t| !t.judged) {
        return writeln!(
            w,
            "\nthresholds   not judged: the run could not exercise the target ({}; see the \
             verdict)",
            s.verdict.name()
        );
    }
    let breaches: Vec<_> = s.thresholds.iter().filter(|t| t.breached()).collect();
    // Judged on what ran: a run stopped early met them for part of its load only.
    let partial = match s.stopped {
        crate::model::StopReason::Interrupted => " by the part that ran before Ctrl-C",
        _ => "",
    };
    if breaches.is_empty() {
        return writeln!(w, "\nthresholds   all {} met{partial}", s.thresholds.len());
    }
    writeln!(
        w,
        "\nthresholds   {} of {} breached",
        breaches.len(),
        s.thresholds.len()
    )?;
    for b in breaches {
        writeln!(w, "  {}", b.message)?;
    }
    Ok(())
}

/// The verdict, upper-case, and its hint: the last line a user reads.
fn render_verdict<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    let name = s.verdict.name().replace('_', " ").to_uppercase();
    // CLEAN judges what came back; a lagging generator's latency figures are another
    // matter, said here too since the verdict is the line a user reads.
    let lag = if s.verdict == Verdict::Clean && s.generator.fell_behind && s.timed_anything() {
        "; latency not trustworthy: the generator fell behind (generator lag above)"
    } else {
        ""
    };
    match (&s.hint, s.verdict) {
        // The hint still says what the run judged (orders all answered with the
        // server's error event, attempts shed): often why a threshold broke.
        (Some(hint), Verdict::Clean) if !s.thresholds_met() => writeln!(
            w,
            "\nverdict      CLEAN, but thresholds were breached (exit 1): {hint}{lag}"
        ),
        (None, Verdict::Clean) if !s.thresholds_met() => {
            writeln!(
                w,
                "\nverdict      CLEAN, but thresholds were breached (exit 1){lag}"
            )
        }
        (Some(hint), _) => writeln!(w, "\nverdict      {name}: {hint}{lag}"),
        (None, _) => writeln!(w, "\nverdict      {name}{}", lag.replacen("; ", ": ", 1)),
    }
}

fn render_phases<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    // Timeline order, not alphabetical: connect → TLS → upgrade → first frame → turn;
    // named expectations' turns after them, under the phases they refine.
    let ordered = Phase::ALL.iter().filter(|p| **p != Phase::GeneratorLag);
    let rows: Vec<(String, &crate::metrics::PhaseStats)> = ordered
        .filter_map(|p| {
            s.phases
                .get(p.name())
                .map(|stats| (p.name().to_string(), stats))
        })
        .chain(s.turns.iter().map(|(name, p)| (format!("turn {name}"), p)))
        .collect();
    // As wide as the longest label, so a long turn name keeps the columns in line.
    let width = rows
        .iter()
        .map(|(label, _)| label.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(14);
    if rows.is_empty() {
        // A closed port: a table header over no rows reads as a rendering fault.
        return writeln!(
            w,
            "\nlatency      none measured: no connection completed a phase"
        );
    }
    writeln!(
        w,
        "\n{:<width$}{:>8}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "phase (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
    )?;
    for (label, p) in rows {
        writeln!(
            w,
            "{label:<width$}{:>8}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
            p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
        )?;
    }
    Ok(())
}

fn render_events<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    if s.events.is_empty() {
        return Ok(());
    }
    // As wide as the longest kind (`pusher_internal:subscription_succeeded`), within
    // reason: a longer one overflows its column rather than widening every row.
    let longest = s
        .events
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0);
    let width = longest.clamp(22, 62) + 2;
    writeln!(
        w,
        "\n{:<width$}{:>10}{:>10}{:>9}",
        "event", "expected", "arrived", "rate"
    )?;
    for (name, e) in &s.events {
        writeln!(
            w,
            "{name:<width$}{:>10}{:>10}{:>8.1}%",
            e.expected,
            e.arrived,
            e.rate * 100.0
        )?;
    }
    Ok(())
}

/// The lenient acceptances in one line, for every report format: what the server let
/// through by its policy, by catalogue entry. `None` when there were none.
pub(crate) fn lenient_note(s: &Summary) -> Option<String> {
    let l = &s.lenient;
    if l.total == 0 {
        return None;
    }
    let parts: Vec<String> = l.by_entry.iter().map(|(k, n)| format!("{k} {n}")).collect();
    Some(format!(
        "{} bad tokens accepted by server policy, not violations ({}); \
         `reject = {{ policy = \"strict\" }}` or a lenient_acceptances threshold makes them fail",
        l.total,
        parts.join(", ")
    ))
}

/// One line saying what calibration learned (and the run checked beside the declared
/// oracles): `learned      identity user_id; sequence seq; 1 reply pattern`.
pub fn learned_line(l: &LearnedOracles) -> String {
    format!("learned      {}", learned_words(l))
}

/// [`learned_line`] without its label: `identity user_id; sequence seq; 1 reply pattern`.
fn learned_words(l: &LearnedOracles) -> String {
    if let Some(why) = &l.unaccepted {
        return format!("nothing: {why}");
    }
    if l.is_empty() {
        return "nothing new (no invariant held on every calibration connection but those \
                the scenario declares)"
            .into();
    }
    let mut parts = Vec::new();
    if !l.identity.is_empty() {
        parts.push(format!("identity {}", l.identity.join(", ")));
    }
    if !l.sequence.is_empty() {
        parts.push(format!("sequence {}", l.sequence.join(", ")));
    }
    if !l.replies.is_empty() {
        parts.push(plural(l.replies.len() as u64, "reply pattern"));
    }
    for (field, held, of) in &l.sequence_broken {
        parts.push(crate::model::learned::broken_words(field, *held, *of));
    }
    // Last: its reason ends the line.
    if !l.sequence_set_aside.is_empty() {
        parts.push(format!(
            "sequence {} set aside (not checked): {SEQUENCE_SET_ASIDE_WHY}",
            l.sequence_set_aside.join(", ")
        ));
    }
    parts.join("; ")
}

/// The replies that came back without a kind calibration saw every time, counted and not
/// judged, without the console's `learned` label: `replies short of calibration (not
/// judged): ask without tool ×4; …`.
fn replies_short_words(short: &std::collections::BTreeMap<String, u64>) -> Option<String> {
    if short.is_empty() {
        return None;
    }
    let mut parts: Vec<(&String, &u64)> = short.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = parts
        .iter()
        .take(3)
        .map(|(what, n)| format!("{what} ×{n}"))
        .collect();
    let more = parts.len().saturating_sub(3);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "replies short of calibration (not judged: a server may send a kind only \
         sometimes): {}{more}; name a kind in an expect to require it",
        shown.join(", ")
    ))
}

/// Involved connections listed under each violation of the console summary.
const INVOLVED_SHOWN: usize = 4;

/// Why the run stopped, as the header says it: "completed" read as a verdict on a run
/// whose every connection was refused at once, which ends early for that reason alone.
fn stop_shown(stopped: StopReason) -> &'static str {
    match stopped {
        StopReason::Completed => "all connections ended",
        StopReason::Duration => "duration reached",
        StopReason::Interrupted => "interrupted",
        StopReason::Unreachable => "stopped early: every TCP connection refused",
        StopReason::AuthRefused => "stopped early: every token refused",
        StopReason::NotFound => "stopped early: no WebSocket at that path",
        StopReason::CertificateRefused => "stopped early: the server's certificate refused",
        StopReason::UpgradeUnanswered => "stopped early: no upgrade answered",
        StopReason::ClosedUnaccepted => {
            "stopped early: the first connections all closed with a protocol error"
        }
    }
}

fn render_violations<W: Write>(s: &Summary, w: &mut W) -> io::Result<()> {
    let v = &s.violations;
    // A target no connection got into was never used: whatever the cause, the oracles'
    // counts are its refusals seen through them, noise beside the verdict that says what
    // to fix, and "none" would read as a pass.
    if s.never_used_target() {
        return writeln!(
            w,
            "\nviolations   not judged: no connection was accepted, the target was never \
             used (see the verdict)"
        );
    }
    if v.total == 0 {
        return writeln!(w, "\nviolations   none");
    }
    let parts: Vec<String> = v
        .by_oracle
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    // Against a target the run could not judge, what the oracles saw is the
    // misconfiguration, not a race: one line per refused connection would bury the
    // verdict that says what to fix, so they are counted on one line, not listed.
    if !s.verdict.exercised() {
        return writeln!(
            w,
            "\nviolations   not judged: {} counted ({}), what the verdict names, not findings; \
             not listed here (every kept one is in violations.jsonl when results are written)",
            v.total,
            parts.join(", ")
        );
    }
    // An inconclusive run with violations had them excused by its verdict (expectations
    // a server going down cut): listed for what they were, said to be no findings.
    let excused = match s.verdict {
        Verdict::Inconclusive => "  not findings: the verdict says why",
        _ => "",
    };
    writeln!(
        w,
        "\nviolations   {}  ({}){excused}",
        v.total,
        parts.join(", ")
    )?;
    let jti = |id: &str| super::jti_shown(id, s.probe.no_token);
    for x in v.first.iter().take(5) {
        let learned = if x.learned { "(learned) " } else { "" };
        writeln!(
            w,
            "  {:>9.1}ms  {:<12} {learned}conn {} user {} ({}){}  expected {}  seen {}",
            x.at_ms,
            x.oracle.name(),
            x.conn,
            x.user,
            // Step numbers restart in every group: "(step 3)" needs its group beside it.
            x.group,
            jti(&x.jti),
            x.expected_shown(),
            x.seen
        )?;
        // The interleaving behind a session-oracle verdict: who started when, and what
        // the server answered each.
        for i in x.involved.iter().take(INVOLVED_SHOWN) {
            writeln!(
                w,
                "               conn {:<5}{}  planned {:.1}ms  started {:.3}ms  {}",
                i.conn,
                jti(&i.jti),
                i.planned_start_ms,
                i.attempt_start_ms,
                i.answer
            )?;
        }
        if x.involved.len() > INVOLVED_SHOWN {
            writeln!(
                w,
                "               … {} more connections",
                x.involved.len() - INVOLVED_SHOWN
            )?;
        }
    }
    if v.total > 5 {
        writeln!(
            w,
            "  … {} more (every kept one is in violations.jsonl when results are written)",
            v.total - 5
        )?;
    }
    Ok(())
}

/// One collide barrier or message rendezvous: how many went out together, how tightly, and
/// for a rendezvous who never arrived.
fn render_barrier(b: &crate::model::BarrierStats, w: &mut impl Write) -> io::Result<()> {
    // In a merged result every part lists its own barriers: name the part as `--shard`
    // writes it (`--workers` runs worker-0 as shard 0/N), or they read as duplicates.
    let part = b
        .shard
        .map_or_else(String::new, |p| format!(" (shard {p})"));
    let Some(rv) = &b.rendezvous else {
        if b.released == 0 {
            // No connection reached it (a closed port: none got through its upgrade).
            return writeln!(
                w,
                "barrier      {}{part}: none of {} released (none reached it)",
                b.group, b.connections
            );
        }
        return writeln!(
            w,
            "barrier      {}{part}: {}/{} released together at {:.1}ms; spread p50 {}µs  p99 {}µs  max {}µs",
            b.group, b.released, b.connections, b.fired_ms, b.spread_p50_us, b.spread_p99_us, b.spread_max_us
        );
    };
    // Inside a repeat, each iteration is a meeting of its own (1-based here).
    let meeting = match rv.iteration {
        Some(i) => format!(", iteration {}", i.saturating_add(1)),
        None => String::new(),
    } + &part;
    if b.fired_ms == 0.0 && rv.arrived == 0 {
        writeln!(
            w,
            "rendezvous   {} #{}{meeting}: nobody arrived (0/{} connections)",
            b.group, rv.step, b.connections
        )?;
        return more_meetings(rv, w);
    }
    writeln!(
        w,
        "rendezvous   {} #{}{meeting}: {}/{} arrived, {} sends released together at {:.1}ms{}; spread p50 {}µs  p99 {}µs  max {}µs",
        b.group,
        rv.step,
        rv.arrived,
        b.connections,
        b.released,
        b.fired_ms,
        if rv.timed_out { " (timed out)" } else { "" },
        b.spread_p50_us,
        b.spread_p99_us,
        b.spread_max_us
    )?;
    if rv.missing_total > 0 {
        let shown: Vec<String> = rv.missing.iter().map(u32::to_string).collect();
        let more = rv.missing_total.saturating_sub(rv.missing.len());
        writeln!(
            w,
            "             missing: conn {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            }
        )?;
    }
    more_meetings(rv, w)
}

/// The meetings of a rendezvous in a long repeat that the summary counts but does not list.
fn more_meetings(rv: &crate::model::RendezvousInfo, w: &mut impl Write) -> io::Result<()> {
    if rv.more_meetings == 0 {
        return Ok(());
    }
    writeln!(
        w,
        "             and {} of #{} (not listed)",
        crate::model::words::plural(rv.more_meetings, "later meeting"),
        rv.step
    )
}

#[cfg(test)]
mod tests;
