//! Shrinking a repro to the few connections, actions and offsets its race needs.
//!
//! Why delta debugging and not proptest's shrinker: proptest shrinks values through the
//! strategies that generated them, and assumes a deterministic test. A repro is a recorded
//! artifact (possibly hand-edited, from any round) whose "test" is a flaky, expensive run
//! against a live server. `ddmin` over the artifact, with a rate threshold as the test,
//! fits that: every candidate is a valid plan by construction (we only remove or move
//! things), and a candidate is kept only if it still breaks the *same* oracle at a rate not
//! far below the original, so shrinking neither drifts to another bug nor to a rarer repro.
//!
//! Soundness: a shrunk repro must still be a well-formed client of the protocol, or it
//! "reproduces" against a correct server too (a subscribe sent before the ack it waited
//! for, a message on a channel never joined). So removals keep the script's dependencies:
//!
//! - a waiting `expect` stays while any later `send`, `expect` or `rendezvous` of the same
//!   connection (before its next connect) stays: it gates them;
//! - an `expect` goes with the sends that cause its messages: one correlated with a send is
//!   removed with it, and so is one correlated with an earlier send that an expectation
//!   already answered (a subscription's push after its receipt) with each send since that
//!   answer (what publishes to it); an uncorrelated one caused by several sends (those since the previous
//!   `expect`) loses one item of a count-shaped pattern (`reply reply reply`), so the count
//!   stays consistent, or makes the send unremovable when its pattern cannot follow;
//! - a `rendezvous` goes with the send it releases;
//!
//! and a candidate counts only if a run breaks the same oracle on the same expectation with
//! the same kind of evidence ([`Signature`]), not any violation of that oracle.

use super::HuntError as Error;
use super::{Rate, Repro, Runner, Short};
use crate::model::{Action, ExpectPlan, OracleKind, Plan, Repeat, TokenSource, Violation};
use crate::plan::expand_conn;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// Actions a scripted connection is expanded to at most for shrinking its actions.
const SHRINK_EXPAND_CAP: usize = 10_000;

/// Limits on shrinking.
#[derive(Debug, Clone, Copy)]
pub struct ShrinkOptions {
    /// Runs per candidate (and for the before/after rates).
    pub times: u32,
    /// Candidates tried at most.
    pub max_candidates: u32,
    /// Wall-clock budget for everything: the rates before and after and every candidate.
    pub budget: Duration,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions {
            times: 10,
            max_candidates: 200,
            budget: Duration::from_secs(300),
        }
    }
}

/// Before and after.
#[derive(Debug)]
pub struct ShrinkOutcome {
    pub before: (usize, Rate),
    pub after: (usize, Rate),
    pub candidates: u32,
    /// Why the search for smaller candidates stopped before it was done: the budget (the
    /// candidates get what the rate before and the rate after leave) or Ctrl-C.
    pub short: Option<Short>,
    pub repro: Repro,
    /// The smallest candidate's size and rate when, measured again at the end, it did not
    /// reproduce (a race that shows at that size only sometimes), or reproduced at a rate
    /// significantly below half the original's (`drifted`): then `repro` and `after` are
    /// the original's, and no smaller repro is claimed ([`ShrinkOutcome::confirmed`]).
    pub unconfirmed: Option<(usize, Rate)>,
}

impl ShrinkOutcome {
    /// This outcome, or, when its smaller repro failed its check at the end, the
    /// `original` repro unchanged, with the candidate's figures in
    /// [`ShrinkOutcome::unconfirmed`]. It fails when its rate after is 0 of N (or it was
    /// not measured at all), and when that rate is significantly below half the original's
    /// (`drifted`): the search kept candidates on one small measure each, and a chain of
    /// lucky ones can end at a rarer repro than the threshold allows (10/10 shrunk to one
    /// that reproduced 2/10 after). A minimal repro that failed its own check would send
    /// its user chasing a race it does not show, with the original's evidence naming
    /// connections it no longer has. An outcome that kept the original plan has no
    /// candidate to doubt: only a rate after of none fails it.
    pub fn confirmed(mut self, original: &Repro) -> ShrinkOutcome {
        let smaller = self.repro.plan != original.plan || self.after.0 != self.before.0;
        let drift = smaller && drifted(&self.before.1, &self.after.1);
        if self.after.1.reproduced > 0 && !drift {
            return self;
        }
        // The original plan kept and never measured again (the budget ran out first): no
        // candidate to doubt, and no measure saying it stopped reproducing; its rate
        // before stands, and the caller says nothing smaller was found in the budget.
        if !smaller && self.after.1.runs == 0 {
            return self;
        }
        // Ctrl-C stopped the search, and with it the measure after (no run): the smaller
        // plan is what each step kept when tried, never measured again, not disproved.
        // The caller writes it as a partial repro, saying so; reverting it here threw the
        // kept steps away (every interrupted shrink wrote nothing).
        if self.short == Some(Short::Interrupted) && self.after.1.runs == 0 {
            return self;
        }
        self.unconfirmed = Some((self.after.0, self.after.1.clone()));
        self.after = (self.before.0, self.before.1.clone());
        self.repro = original.clone();
        self
    }
}

/// z of the one-sided 95% bound [`drifted`] reads the rate after at.
const DRIFT_Z: f64 = 1.645;

/// Whether a smaller repro's rate after (`after`) is significantly below half the
/// original's rate (`before`), the rate every candidate had to keep.
///
/// The search accepts a candidate on one measure of a few runs, so a candidate whose true
/// rate is well below half passes now and then by luck, and ddmin tries many in a row:
/// the last one kept may be such a one. The rate after is a fresh measure of it. Sampling
/// noise of that measure gets the benefit of the doubt: the candidate fails only when even
/// the upper end of a one-sided 95% Wilson interval of its rate after lies below half the
/// original's measured rate, so one that truly reproduces at half that rate is refused in
/// at most about 1 shrink of 20. With 10 runs each: after 10/10 before, 2/10 after (upper
/// bound 0.46) has drifted, 3/10 (0.56) has not; after 8/10 before, 1/10 (0.35) has
/// and 2/10 has not.
/// (The original's rate is taken as measured: widening it too would let 2/10 stand for
/// 10/10.) Nothing measured on either side proves nothing: no drift.
fn drifted(before: &Rate, after: &Rate) -> bool {
    if before.runs == 0 || after.runs == 0 {
        return false;
    }
    let half = f64::from(before.reproduced) / f64::from(before.runs) / 2.0;
    let (_, upper) = crate::results::compare::wilson(
        u64::from(after.reproduced),
        u64::from(after.runs),
        DRIFT_Z,
    );
    upper < half
}

/// What a violation says, with what differs from run to run (token labels, subjects,
/// correlation values, deadlines, how many steps were left) taken out: two violations with
/// the same signature broke the same expectation the same way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    pub oracle: OracleKind,
    pub expected: String,
    /// The kind of evidence: for completeness, whether any of the pattern's events came
    /// and how the connection ended; otherwise the seen text, normalized.
    pub seen: String,
}

impl Signature {
    /// The signature of `v`, a violation of a run of `plan`.
    pub fn of(v: &Violation, plan: &Plan) -> Signature {
        let subs: Vec<&str> = plan.tokens.iter().map(|t| t.sub.as_str()).collect();
        Signature::with_subs(v, &subs)
    }

    /// The signature of `v` where `subs` are the token subjects a run presented.
    pub fn with_subs(v: &Violation, subs: &[&str]) -> Signature {
        let mut names: Vec<&str> = subs.to_vec();
        // Longest first, so `user-12` is not read as `user-1` and a `2`.
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let base_jti = crate::model::planned_jti(&v.jti);
        let clean = |text: &str| {
            let mut out = text.to_string();
            for (value, label) in [
                (v.correlation.as_deref().unwrap_or_default(), "<corr>"),
                (v.jti.as_str(), "<jti>"),
                (base_jti, "<jti>"),
            ] {
                if !value.is_empty() {
                    out = out.replace(value, label);
                }
            }
            for name in &names {
                if !name.is_empty() {
                    out = out.replace(name, "<sub>");
                }
            }
            out
        };
        // `agent_thinking+`: written with its mark since 2026-12-04, without it in repros
        // made before; the same expectation either way.
        let mut expected = clean(&v.expected).replace("+ ", " ").replace("+)", ")");
        if expected.ends_with('+') {
            expected.pop();
        }
        // `... within 2s`: the deadline is the script's, not the finding.
        if let Some(at) = expected.find(" within ") {
            expected.truncate(at);
        }
        // `the script to go on: 3 more steps (...)`: shrinking changes how many.
        if let Some(at) = expected.find(": ") {
            if expected.starts_with(crate::oracle::CUT_OFF) {
                expected.truncate(at);
            }
        }
        let seen = clean(&v.seen);
        let seen = if v.oracle == OracleKind::Completeness {
            let (events, end) = match seen.split_once("; then ") {
                Some((events, end)) => (events, end),
                None => (seen.as_str(), ""),
            };
            // `... at step 3 of 5 (send)`: which step moves as steps go; a close's reason
            // (`server closed with 4409 "..."`) may name what the run numbered.
            let end = end.split(" at step ").next().unwrap_or_default();
            let end = end.split(" \"").next().unwrap_or_default();
            let events = if events == "nothing" || events.starts_with("nothing") {
                "nothing"
            } else {
                "events"
            };
            format!("{events}; {end}")
        } else if v.oracle == OracleKind::Ordering {
            // `seq = 3427`: a counter the whole server shares (trade ids, a feed's
            // sequence) never repeats a value from run to run; which field broke, and
            // whether it still held a number, is the finding.
            sequence_shape(&seen)
        } else if v.oracle == OracleKind::Exclusivity {
            // `4 connections each served after the other was accepted`: how many of the
            // plan's connections met is what removing connections changes (that more than
            // the limit did is the finding, in `expected`), and so is a gap in ms.
            without_numbers(&seen)
        } else {
            seen
        };
        let expected = if v.oracle == OracleKind::Ordering {
            sequence_shape(&expected)
        } else {
            expected
        };
        Signature {
            oracle: v.oracle,
            expected,
            seen,
        }
    }
}

/// A sequence violation's text (`seq = 3427`, `seq = "0x64"`, `integer seq`) with the
/// number taken out (`seq = <n>`); a value that is no sequence number stays as it is.
fn sequence_shape(text: &str) -> String {
    // What a scoped sequence and the record's kind add (`seq = 7 (symbol = ETH)`, `seq = 7
    // on update`) is the same finding as a repro made before they were said.
    let text = text.split(" (").next().unwrap_or(text);
    let text = text.split(" on ").next().unwrap_or(text);
    let Some((field, value)) = text.rsplit_once(" = ") else {
        return text.to_string();
    };
    let number = serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .and_then(|v| crate::oracle::sequence_number(&v));
    match number {
        Some(_) => format!("{field} = <n>"),
        None => text.to_string(),
    }
}

/// `text` with every run of ASCII digits replaced by `<n>`.
pub(super) fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("<n>");
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

struct Shrinker<'a> {
    runner: &'a Runner,
    repro: &'a Repro,
    /// The signatures of the repro's evidence: a candidate must show one of them.
    wanted: BTreeSet<Signature>,
    opts: ShrinkOptions,
    need: u32,
    tried: u32,
    /// When the candidates' share of the budget ends.
    candidates_end: Instant,
    /// Set when the budget or Ctrl-C stopped the search.
    short: Option<Short>,
    /// The last candidate that held, and what its measure saw: the smaller plan's own
    /// evidence, pooled with the rate after when that misses every run.
    held: Option<(Plan, super::Measured)>,
}

impl Shrinker<'_> {
    fn exhausted(&mut self) -> bool {
        if self.runner.cancel.is_cancelled() {
            self.short = Some(Short::Interrupted);
        } else if Instant::now() >= self.candidates_end {
            self.short = Some(Short::Budget);
        }
        self.short.is_some() || self.tried >= self.opts.max_candidates
    }

    /// Whether `plan` still breaks the repro's oracle often enough.
    async fn holds(&mut self, plan: &Plan) -> Result<bool, Error> {
        if self.exhausted() || plan.conns.is_empty() {
            return Ok(false);
        }
        self.tried += 1;
        let (wanted, repro) = (&self.wanted, self.repro);
        let measured = self
            .runner
            .measure_where(
                plan,
                self.repro.oracle,
                self.opts.times,
                Some(self.need),
                Some(self.candidates_end),
                (
                    &|v| !repro.excuses(v) && wanted.contains(&Signature::of(v, plan)),
                    repro.policy,
                ),
            )
            .await?;
        if let Some(short) = &measured.rate.short {
            self.short = Some(short.clone());
        }
        let holds = measured.rate.reproduced >= self.need;
        if holds {
            self.held = Some((plan.clone(), measured));
        }
        Ok(holds)
    }
}

/// Shrinks `repro`: connections (the involved ones first, then ddmin), actions, then time.
/// Everything fits in `opts.budget`: the rate after gets twice as long as the rate before
/// took (the shrunk plan is no bigger; a smaller plan that reproduces nothing is measured
/// once more), and the candidates get the rest.
pub async fn shrink(
    repro: &Repro,
    runner: &Runner,
    opts: ShrinkOptions,
) -> Result<ShrinkOutcome, Error> {
    let started = Instant::now();
    let budget_end = started + opts.budget;
    let signatures = |evidence: &[Violation]| -> BTreeSet<Signature> {
        evidence
            .iter()
            .filter(|v| v.oracle == repro.oracle)
            .map(|v| Signature::of(v, &repro.plan))
            .collect()
    };
    let stored = signatures(&repro.evidence);
    // A repro without evidence (hand-made) can only ask for the oracle; what its policy
    // rule excuses never counts, as in the hunt that found it.
    let matching = |wanted: &BTreeSet<Signature>, v: &Violation, plan: &Plan| {
        !repro.excuses(v) && (wanted.is_empty() || wanted.contains(&Signature::of(v, plan)))
    };
    let measure_before = |wanted: BTreeSet<Signature>| async move {
        runner
            .measure_where(
                &repro.plan,
                repro.oracle,
                opts.times,
                None,
                Some(budget_end),
                (&|v| matching(&wanted, v, &repro.plan), repro.policy),
            )
            .await
    };
    let mut before = measure_before(stored.clone()).await?;
    let mut wanted = stored.clone();
    if before.rate.reproduced == 0 && !stored.is_empty() {
        // Its stored evidence may word the violation as an older version did, or name
        // subjects of the larger plan it was cut from (a regression repro): what `replay`
        // reproduces, the same oracle broken, then stands for it, as it breaks now.
        let loose = measure_before(BTreeSet::new()).await?;
        if loose.rate.reproduced > 0 {
            wanted = signatures(&loose.evidence);
            before = loose;
        }
    }
    let before = before.rate;
    let matches = |v: &Violation, plan: &Plan| matching(&wanted, v, plan);
    if before.reproduced == 0 {
        // It did not reproduce here: no candidate could, and there is nothing to shrink
        // (measuring again would only spend the budget).
        return Ok(ShrinkOutcome {
            before: (repro.size(), before.clone()),
            after: (repro.size(), before),
            candidates: 0,
            short: None,
            repro: repro.clone(),
            unconfirmed: None,
        });
    }
    let reserve = started.elapsed();
    // Accept candidates reproducing at no less than half the original rate (at least once);
    // the one kept last is held to it again on its rate after ([`drifted`]).
    let need = ((f64::from(before.reproduced) / 2.0).ceil() as u32).max(1);
    let mut s = Shrinker {
        runner,
        repro,
        wanted: wanted.clone(),
        opts,
        need,
        tried: 0,
        // Room for the rate after, measured up to twice.
        candidates_end: budget_end.checked_sub(reserve * 2).unwrap_or(started),
        short: None,
        held: None,
    };
    let mut plan = shrink_connections(&mut s, repro.plan.clone()).await?;
    plan = shrink_actions(&mut s, plan).await?;
    plan = shrink_time(&mut s, plan).await?;
    // The rate after also brings fresh evidence: a shrunk repro must not show the
    // original's connections.
    let wanted_here = |v: &Violation| matches(v, &plan);
    let measure_after = || {
        runner.measure_where(
            &plan,
            repro.oracle,
            opts.times,
            None,
            Some(budget_end),
            (&wanted_here, repro.policy),
        )
    };
    let mut after = measure_after().await?;
    if after.rate.reproduced == 0 && plan != repro.plan {
        // A race that shows at this size only sometimes may miss every run of one
        // measure though it held in the search: measured once more (the budget keeps
        // room for it) before the smaller plan is given up ([`ShrinkOutcome::confirmed`]).
        after = measure_after().await?;
    }
    pool_with_search(&mut after, s.held.take(), &plan);
    let mut shrunk = repro.clone();
    shrunk.rate = (after.rate.runs > 0).then_some((after.rate.reproduced, after.rate.runs));
    // The rates were measured here: the minimal repro replays here too.
    shrunk.target = runner.url().to_string();
    shrunk.reference = super::ReferenceServer::of(&runner.target);
    if plan != repro.plan && !after.evidence.is_empty() {
        shrunk.evidence = after.evidence;
    }
    shrunk.plan = plan;
    Ok(ShrinkOutcome {
        before: (repro.size(), before),
        after: (shrunk.size(), after.rate),
        candidates: s.tried,
        short: s.short,
        repro: shrunk,
        unconfirmed: None,
    }
    .confirmed(repro))
}

async fn shrink_connections(s: &mut Shrinker<'_>, plan: Plan) -> Result<Plan, Error> {
    let mut keep: Vec<u32> = plan.conns.iter().map(|c| c.id).collect();
    // The violation's own witnesses are the likeliest minimal set: try them first.
    let involved: BTreeSet<u32> = s
        .repro
        .evidence
        .iter()
        .flat_map(|v| std::iter::once(v.conn).chain(v.involved.iter().map(|i| i.conn)))
        .collect();
    if involved.len() < keep.len() {
        let subset: Vec<u32> = keep
            .iter()
            .copied()
            .filter(|id| involved.contains(id))
            .collect();
        if s.holds(&subset_plan(&plan, &subset)).await? {
            keep = subset;
        }
    }
    // ddmin (Zeller & Hildebrandt): try chunks, then complements, refining granularity.
    let mut n = 2usize;
    while keep.len() >= 2 && !s.exhausted() {
        let chunks = split(&keep, n);
        let mut reduced = false;
        for candidate in chunks
            .iter()
            .cloned()
            .chain(chunks.iter().map(|c| complement(&keep, c)))
        {
            if candidate.is_empty() || candidate.len() == keep.len() {
                continue;
            }
            if s.holds(&subset_plan(&plan, &candidate)).await? {
                keep = candidate;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= keep.len() {
                break;
            }
            n = (n * 2).min(keep.len());
        }
    }
    Ok(subset_plan(&plan, &keep))
}

/// Drops single actions (never the connect), last first, keeping each drop that still
/// fails the same way. Each drop takes what depends on it and is skipped when it would
/// leave the script ill-formed ([`removal`]).
async fn shrink_actions(s: &mut Shrinker<'_>, mut plan: Plan) -> Result<Plan, Error> {
    for ci in 0..plan.conns.len() {
        // A scripted connection is edited in its expanded form: exactly the actions its
        // cursor walks, so a candidate is the same script less the dropped steps. One whose
        // loops expand past the cap keeps its script (whole connections still go).
        let Some(mut current) = expand_conn(&plan, &plan.conns[ci], SHRINK_EXPAND_CAP) else {
            continue;
        };
        let mut ai = current.len();
        while ai > 1 && !s.exhausted() {
            ai -= 1;
            if ai >= current.len() {
                continue;
            }
            let Some(actions) = removal(&current, ai) else {
                continue;
            };
            let mut candidate = plan.clone();
            candidate.conns[ci].actions = actions.clone();
            if s.holds(&candidate).await? {
                plan = candidate;
                current = actions;
            }
        }
    }
    Ok(plan)
}

/// Where the session `at` belongs to ends: the next connect, reconnect or abort.
fn session_end(actions: &[Action], at: usize) -> usize {
    (at + 1..actions.len())
        .find(|&k| {
            matches!(
                actions[k],
                Action::Connect | Action::Reconnect { .. } | Action::AbortHandshake { .. }
            )
        })
        .unwrap_or(actions.len())
}

/// Whether an action talks to the server in a way a waiting expect before it gates.
fn gated(action: &Action) -> bool {
    matches!(
        action,
        Action::Send { .. }
            | Action::SendText { .. }
            | Action::SendBinary { .. }
            | Action::Ping { .. }
            | Action::Expect(_)
            | Action::Rendezvous { .. }
    )
}

/// Whether `expect` is correlated with `message` (the send that causes its messages).
fn correlated_with(expect: &ExpectPlan, message: &serde_json::Value) -> bool {
    expect.correlate.as_ref().is_some_and(|(field, value)| {
        // The send carries the value where the scenario's `correlate.send` says.
        let sent_at = expect.correlate_sent().unwrap_or(field);
        crate::model::path::lookup(message, sent_at)
            .is_some_and(|v| crate::plan::json_key(v) == *value)
    })
}

/// A pattern that counts replies one by one (`reply reply reply`): one item per send.
fn counted(expect: &ExpectPlan) -> bool {
    expect.pattern.iter().all(|i| i.repeat == Repeat::One)
        && expect.pattern.windows(2).all(|w| w[0].event == w[1].event)
}

/// `actions` without the action at `ai` and what depends on it, or `None` when that
/// cannot be removed without leaving the script ill-formed (module docs).
fn removal(actions: &[Action], ai: usize) -> Option<Vec<Action>> {
    if matches!(
        actions.get(ai)?,
        Action::Connect | Action::AbortHandshake { .. }
    ) {
        return None;
    }
    let end = session_end(actions, ai);
    let mut remove: BTreeSet<usize> = BTreeSet::from([ai]);
    let mut shorten: Option<usize> = None;
    if actions[ai].is_send() {
        // The rendezvous that releases it.
        if ai > 0 && matches!(actions[ai - 1], Action::Rendezvous { .. }) {
            remove.insert(ai - 1);
        }
        for k in ai + 1..end {
            let Action::Expect(e) = &actions[k] else {
                continue;
            };
            if e.correlate.is_some() {
                // Its cause is the latest send before it with the value (as the plan
                // compiler resolved it), not any send that shares it.
                let cause = (0..k).rev().find(|&j| match &actions[j] {
                    Action::Send { message } => correlated_with(e, message),
                    _ => false,
                });
                // Or its messages are pushes on a value an earlier expectation already
                // answered (a STOMP subscription's MESSAGE after its RECEIPT): the sends
                // since that answer are what the server pushes about (the SEND that
                // publishes to it). Dropped alone, the push never comes, against a correct
                // server too.
                let pushed_after_answer = cause.is_some_and(|c| {
                    c < ai && (c + 1..ai).any(|j| matches!(actions[j], Action::Expect(_)))
                });
                if cause == Some(ai) || pushed_after_answer {
                    remove.insert(k);
                }
                continue;
            }
            // An uncorrelated expect answers the sends since the previous expect.
            let since = (0..k)
                .rev()
                .take_while(|&j| {
                    !matches!(
                        actions[j],
                        Action::Expect(_)
                            | Action::Connect
                            | Action::Reconnect { .. }
                            | Action::AbortHandshake { .. }
                    )
                })
                .filter(|&j| actions[j].is_send())
                .collect::<Vec<_>>();
            if !since.contains(&ai) {
                continue;
            }
            if since.len() == 1 {
                remove.insert(k);
            } else if counted(e) && e.pattern.len() == since.len() {
                shorten = Some(k);
            } else if e.pattern.iter().all(|i| i.repeat == Repeat::One) {
                // A fixed pattern answering several sends: it cannot follow one fewer.
                return None;
            }
            // A pattern with `+`/`*`/`?` items takes any count: it stays as it is.
            break;
        }
    }
    // A waiting expect gates everything after it in its session.
    for &r in &remove {
        if let Action::Expect(e) = &actions[r] {
            let later_stays = (r + 1..session_end(actions, r))
                .any(|k| !remove.contains(&k) && gated(&actions[k]));
            if e.wait && later_stays {
                return None;
            }
        }
    }
    let mut out = Vec::with_capacity(actions.len());
    for (k, action) in actions.iter().enumerate() {
        if remove.contains(&k) {
            continue;
        }
        let mut action = action.clone();
        if shorten == Some(k) {
            if let Action::Expect(e) = &mut action {
                let kept = e.pattern.len().saturating_sub(1);
                e.pattern = e.pattern[..kept].into();
            }
        }
        out.push(action);
    }
    Some(out)
}

/// Moves starts to zero, then pulls every connection onto the earliest start.
async fn shrink_time(s: &mut Shrinker<'_>, plan: Plan) -> Result<Plan, Error> {
    let Some(min) = plan.conns.iter().map(|c| c.start).min() else {
        return Ok(plan);
    };
    let mut plan = plan;
    if !min.is_zero() {
        let mut candidate = plan.clone();
        for c in &mut candidate.conns {
            c.start -= min;
        }
        if s.holds(&candidate).await? {
            plan = candidate;
        }
    }
    let first = plan.conns.iter().map(|c| c.start).min().unwrap_or_default();
    let mut together = plan.clone();
    for c in &mut together.conns {
        c.start = first;
    }
    if together != plan && s.holds(&together).await? {
        plan = together;
    }
    Ok(plan)
}

/// The plan restricted to `ids`, with token slots re-indexed (minted or logged-in tokens;
/// a file's, a list's or a command's keep their slots).
pub(super) fn subset_plan(plan: &Plan, ids: &[u32]) -> Plan {
    let mut out = plan.clone();
    out.conns.retain(|c| ids.contains(&c.id));
    // Tokens from a file, a list or a command go to the valid slots in turn (the k-th
    // valid slot gets token k mod n, `auth::source::assign`): renumbering the slots would
    // hand a kept connection another token, and connections that shared one (the race)
    // would no longer. Every slot stays; the ones no connection uses are never presented.
    if plan
        .auth
        .tokens
        .as_ref()
        .is_some_and(|source| !matches!(source, TokenSource::Login(_)))
    {
        return out;
    }
    let used: BTreeSet<u32> = out.conns.iter().map(|c| c.token).collect();
    let remap: Vec<Option<u32>> = (0..plan.tokens.len() as u32)
        .scan(0u32, |next, slot| {
            Some(used.contains(&slot).then(|| {
                *next += 1;
                *next - 1
            }))
        })
        .collect();
    out.tokens = plan
        .tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| used.contains(&(*i as u32)))
        .map(|(_, t)| t.clone())
        .collect();
    for c in &mut out.conns {
        c.token = remap.get(c.token as usize).copied().flatten().unwrap_or(0);
    }
    out
}

/// A shrunk plan the rate after never reproduced though the search's measure of that very
/// plan (`held`) did: the rate after becomes the two measures pooled (reproductions, runs
/// and replays asked for added), with the search's evidence, so a 0 of N never stands
/// beside evidence of the original. Anything else (a rate after that reproduced, no run
/// after, or a `held` of another plan) is left as it is.
fn pool_with_search(
    after: &mut super::Measured,
    held: Option<(Plan, super::Measured)>,
    plan: &Plan,
) {
    let Some((held_plan, held)) = held else {
        return;
    };
    if after.rate.reproduced == 0 && after.rate.runs > 0 && held_plan == *plan {
        after.rate.reproduced = held.rate.reproduced;
        after.rate.runs += held.rate.runs;
        after.rate.planned += held.rate.planned;
        after.evidence = held.evidence;
    }
}

fn split(items: &[u32], n: usize) -> Vec<Vec<u32>> {
    let size = items.len().div_ceil(n.max(1));
    items.chunks(size.max(1)).map(<[u32]>::to_vec).collect()
}

fn complement(items: &[u32], chunk: &[u32]) -> Vec<u32> {
    items
        .iter()
        .copied()
        .filter(|i| !chunk.contains(i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::PatternItem;
    use serde_json::json;
    use std::time::Duration;

    /// A shrink whose smaller plan did not reproduce when measured again claims nothing:
    /// the original repro (plan and evidence) stands, its rate the one measured before,
    /// and the candidate's figures are kept to be said. One that reproduced is kept.
    #[test]
    fn a_smaller_repro_that_fails_its_own_check_is_not_claimed() {
        let text = "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{ close = 1000 }]\n";
        let scenario = crate::scenario::load_str(text, "s.toml").unwrap();
        let plan = crate::plan::build(&scenario, 1);
        let original = Repro::for_plan(
            &scenario,
            1,
            plan.clone(),
            "ws://127.0.0.1:1/ws".into(),
            OracleKind::Identity,
        );
        let mut smaller = original.clone();
        smaller.plan = subset_plan(&plan, &[plan.conns[0].id]);
        let rate = |reproduced| Rate {
            reproduced,
            runs: 3,
            planned: 3,
            short: None,
            shed: 0,
        };
        let outcome = |after| ShrinkOutcome {
            before: (original.size(), rate(3)),
            after: (smaller.size(), rate(after)),
            candidates: 5,
            short: None,
            repro: smaller.clone(),
            unconfirmed: None,
        };
        let failed = outcome(0).confirmed(&original);
        assert_eq!(failed.repro.plan, original.plan);
        assert_eq!(failed.after, (original.size(), rate(3)));
        assert_eq!(failed.unconfirmed, Some((smaller.size(), rate(0))));
        let held = outcome(2).confirmed(&original);
        assert_eq!(held.repro.plan, smaller.plan);
        assert_eq!(held.after, (smaller.size(), rate(2)));
        assert_eq!(held.unconfirmed, None);
        // Interrupted before the measure after (no run): the smaller plan stands, to be
        // written as a partial repro; a budget that ran out there still gives it up.
        let unmeasured = |short| ShrinkOutcome {
            after: (
                smaller.size(),
                Rate {
                    reproduced: 0,
                    runs: 0,
                    ..rate(0)
                },
            ),
            short,
            ..outcome(0)
        };
        let interrupted = unmeasured(Some(Short::Interrupted)).confirmed(&original);
        assert_eq!(interrupted.repro.plan, smaller.plan);
        assert_eq!(interrupted.unconfirmed, None);
        let out_of_time = unmeasured(Some(Short::Budget)).confirmed(&original);
        assert_eq!(out_of_time.repro.plan, original.plan);
    }

    /// A smaller repro the search kept on lucky measures, whose rate after is
    /// significantly below half the original's (10/10 before, 2/10 after), is not claimed:
    /// the original stands, the candidate's figures kept to be said. One within sampling
    /// noise of half (3/10) is kept, and an outcome that kept the original plan (nothing
    /// shrank) has no candidate to doubt.
    #[test]
    fn a_smaller_repro_whose_rate_drifted_below_half_is_not_claimed() {
        let text = "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{ close = 1000 }]\n";
        let scenario = crate::scenario::load_str(text, "s.toml").unwrap();
        let plan = crate::plan::build(&scenario, 1);
        let original = Repro::for_plan(
            &scenario,
            1,
            plan.clone(),
            "ws://127.0.0.1:1/ws".into(),
            OracleKind::Identity,
        );
        let mut smaller = original.clone();
        smaller.plan = subset_plan(&plan, &[plan.conns[0].id]);
        let rate = |reproduced| Rate {
            reproduced,
            runs: 10,
            planned: 10,
            short: None,
            shed: 0,
        };
        let outcome = |repro: &Repro, before, after| ShrinkOutcome {
            before: (original.size(), rate(before)),
            after: (repro.size(), rate(after)),
            candidates: 12,
            short: None,
            repro: repro.clone(),
            unconfirmed: None,
        };
        let drifted = outcome(&smaller, 10, 2).confirmed(&original);
        assert_eq!(drifted.repro.plan, original.plan);
        assert_eq!(drifted.after, (original.size(), rate(10)));
        assert_eq!(drifted.unconfirmed, Some((smaller.size(), rate(2))));
        let noisy = outcome(&smaller, 10, 3).confirmed(&original);
        assert_eq!(noisy.repro.plan, smaller.plan);
        assert_eq!(noisy.after, (smaller.size(), rate(3)));
        assert_eq!(noisy.unconfirmed, None);
        // From 8/10: 1/10 has drifted, 2/10 is within noise of half.
        assert!(outcome(&smaller, 8, 1)
            .confirmed(&original)
            .unconfirmed
            .is_some());
        assert!(outcome(&smaller, 8, 2)
            .confirmed(&original)
            .unconfirmed
            .is_none());
        let unshrunk = outcome(&original, 10, 2).confirmed(&original);
        assert_eq!(unshrunk.after, (original.size(), rate(2)));
        assert_eq!(unshrunk.unconfirmed, None);
        // The original plan kept and not measured again (the budget ran out): no candidate
        // to doubt, nothing said of the target; measured again at 0/10, it is doubted.
        let unmeasured = Rate {
            runs: 0,
            short: Some(Short::Budget),
            ..rate(0)
        };
        let cut = ShrinkOutcome {
            after: (original.size(), unmeasured.clone()),
            ..outcome(&original, 10, 0)
        }
        .confirmed(&original);
        assert_eq!(cut.unconfirmed, None);
        assert_eq!(cut.after, (original.size(), unmeasured));
        let lost = outcome(&original, 10, 0).confirmed(&original);
        assert!(lost.unconfirmed.is_some());
    }

    /// The search saw the shrunk plan reproduce 2 of 3; the rate after saw 0 of 3: the
    /// two pool into 2 of 6 with the search's evidence. A rate after that reproduced, one
    /// that ran nothing, and a search measure of another plan are left as they are.
    #[test]
    fn a_rate_after_of_none_pools_with_the_search_measure_of_the_same_plan() {
        let text = "name = \"s\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{ close = 1000 }]\n";
        let scenario = crate::scenario::load_str(text, "s.toml").unwrap();
        let plan = crate::plan::build(&scenario, 1);
        let smaller = subset_plan(&plan, &[plan.conns[0].id]);
        let measured = |reproduced, runs, evidence: Vec<Violation>| super::super::Measured {
            rate: Rate {
                reproduced,
                runs,
                planned: 3,
                short: None,
                shed: 0,
            },
            evidence,
            others: Default::default(),
        };
        let seen = violation(OracleKind::Identity, "j1", "user 0", "user 1", None);
        let search = || Some((smaller.clone(), measured(2, 3, vec![seen.clone()])));

        let mut after = measured(0, 3, Vec::new());
        pool_with_search(&mut after, search(), &smaller);
        assert_eq!((after.rate.reproduced, after.rate.runs), (2, 6));
        assert_eq!(after.rate.planned, 6);
        assert_eq!(after.evidence, vec![seen.clone()]);

        let mut reproduced = measured(1, 3, Vec::new());
        pool_with_search(&mut reproduced, search(), &smaller);
        assert_eq!((reproduced.rate.reproduced, reproduced.rate.runs), (1, 3));
        assert!(reproduced.evidence.is_empty());

        let mut ran_nothing = measured(0, 0, Vec::new());
        pool_with_search(&mut ran_nothing, search(), &smaller);
        assert_eq!((ran_nothing.rate.reproduced, ran_nothing.rate.runs), (0, 0));

        let mut other_plan = measured(0, 3, Vec::new());
        pool_with_search(&mut other_plan, search(), &plan);
        assert_eq!((other_plan.rate.reproduced, other_plan.rate.runs), (0, 3));
        assert!(other_plan.evidence.is_empty());
    }

    fn expect(events: &str, correlate: Option<(&str, &str)>, wait: bool) -> Action {
        let pattern = events
            .split_whitespace()
            .map(|w| match w.strip_suffix('+') {
                Some(event) => PatternItem {
                    event: event.into(),
                    repeat: Repeat::OneOrMore,
                },
                None => PatternItem {
                    event: w.into(),
                    repeat: Repeat::One,
                },
            })
            .collect();
        Action::Expect(Box::new(ExpectPlan {
            pattern,
            correlate: correlate.map(|(f, v)| (f.to_string(), v.to_string())),
            within: Duration::from_secs(2),
            wait,
            absent: false,
            rare: None,
        }))
    }

    fn send(message: serde_json::Value) -> Action {
        Action::Send { message }
    }

    /// Every script reachable by a chain of removals (each one as [`removal`] allows).
    fn reachable(actions: &[Action]) -> Vec<Vec<Action>> {
        let mut seen = vec![actions.to_vec()];
        let mut next = 0;
        while next < seen.len() {
            let script = seen[next].clone();
            next += 1;
            for ai in 1..script.len() {
                if let Some(out) = removal(&script, ai) {
                    if !seen.contains(&out) {
                        seen.push(out);
                    }
                }
            }
        }
        seen
    }

    fn close() -> Action {
        Action::Close { code: 1000 }
    }

    /// graphql-ws: the subscribe is only legal after the ack the script waits for.
    #[test]
    fn the_expect_that_gates_a_send_stays_while_the_send_does() {
        let script = vec![
            Action::Connect,
            expect("connection_ack", None, true),
            send(json!({"type": "subscribe", "id": "s-0"})),
            expect("next+ complete", Some(("id", "s-0")), true),
            close(),
        ];
        assert_eq!(removal(&script, 1), None, "the gating expect stays");
        // The send goes with the expectation it causes, not with the ack.
        assert_eq!(
            removal(&script, 2),
            Some(vec![Action::Connect, script[1].clone(), close()])
        );
        for kept in reachable(&script) {
            if let Some(at) = kept.iter().position(|a| matches!(a, Action::Send { .. })) {
                assert_eq!(kept[1], script[1], "a send without its ack: {kept:?}");
                assert!(at > 1);
            }
            // An expect whose send went never stays behind.
            if kept.contains(&script[3]) {
                assert!(kept.contains(&script[2]), "{kept:?}");
            }
        }
    }

    /// Mattermost: a request's `seq` comes back as `seq_reply`. The send goes with the
    /// expectation it causes, found by the send's path, never leaving it without its request.
    #[test]
    fn a_send_goes_with_its_expectation_correlated_at_another_reply_path() {
        let mut answered = expect("reply", Some(("seq_reply", "2")), true);
        if let Action::Expect(e) = &mut answered {
            e.rare_mut().correlate_sent = Some("seq".into());
        }
        let script = vec![
            Action::Connect,
            send(json!({"action": "user_typing", "seq": 1})),
            send(json!({"action": "get_statuses", "seq": 2})),
            answered.clone(),
            close(),
        ];
        assert_eq!(
            removal(&script, 2),
            Some(vec![Action::Connect, script[1].clone(), close()])
        );
        for kept in reachable(&script) {
            if kept.contains(&answered) {
                assert!(kept.contains(&script[2]), "{kept:?}");
            }
        }
    }

    /// Phoenix: the join's reply gates the insert; both share the topic value.
    #[test]
    fn a_join_whose_reply_gates_later_sends_stays() {
        let topic = "realtime:room-0";
        let script = vec![
            Action::Connect,
            send(json!({"event": "phx_join", "topic": topic})),
            expect("phx_reply", Some(("topic", topic)), true),
            send(json!({"event": "insert", "topic": topic})),
            expect("postgres_changes", Some(("topic", topic)), true),
            close(),
        ];
        assert_eq!(removal(&script, 1), None, "the join stays");
        assert_eq!(removal(&script, 2), None, "its reply stays");
        // The insert goes with its own expectation, not with the join's reply.
        assert_eq!(
            removal(&script, 3),
            Some(vec![
                Action::Connect,
                script[1].clone(),
                script[2].clone(),
                close()
            ])
        );
        for kept in reachable(&script) {
            if kept.contains(&script[3]) {
                assert!(
                    kept.contains(&script[1]) && kept.contains(&script[2]),
                    "{kept:?}"
                );
            }
        }
    }

    /// STOMP: the MESSAGE correlates with the SUBSCRIBE's id, which its RECEIPT already
    /// answered; the SEND after the receipt is what publishes it. Dropped alone, the
    /// MESSAGE never comes (the shrunk repro "reproduced" against the fixed server): the
    /// SEND goes with the expectation it triggers.
    #[test]
    fn a_send_that_publishes_to_an_answered_subscription_goes_with_its_push() {
        let mut receipt = expect("RECEIPT", Some(("/headers/receipt-id", "r-0")), true);
        if let Action::Expect(e) = &mut receipt {
            e.rare_mut().correlate_sent = Some("/headers/receipt".into());
        }
        let mut message = expect("MESSAGE", Some(("/headers/subscription", "sub-0")), true);
        if let Action::Expect(e) = &mut message {
            e.rare_mut().correlate_sent = Some("/headers/id".into());
        }
        let subscribe = json!({"type": "SUBSCRIBE", "headers": {"id": "sub-0", "receipt": "r-0"}});
        let script = vec![
            Action::Connect,
            expect("CONNECTED", None, true),
            send(subscribe),
            receipt.clone(),
            send(json!({"type": "SEND", "headers": {"destination": "/app/say"}})),
            message.clone(),
            close(),
        ];
        assert_eq!(
            removal(&script, 4),
            Some(vec![
                Action::Connect,
                script[1].clone(),
                script[2].clone(),
                receipt.clone(),
                close()
            ])
        );
        for kept in reachable(&script) {
            if kept.contains(&message) {
                assert!(
                    kept.contains(&script[4]),
                    "a push without its publish: {kept:?}"
                );
            }
        }
        // Pipelined requests still shrink one by one: the first answer is no earlier one's.
        let pipelined = vec![
            Action::Connect,
            send(json!({"id": "a"})),
            send(json!({"id": "b"})),
            expect("reply", Some(("id", "a")), true),
            expect("reply", Some(("id", "b")), true),
            close(),
        ];
        assert_eq!(
            removal(&pipelined, 2),
            Some(vec![
                Action::Connect,
                pipelined[1].clone(),
                pipelined[3].clone(),
                close()
            ])
        );
    }

    /// ActionCable: an uncorrelated confirmation gates the speak.
    #[test]
    fn an_uncorrelated_gate_and_the_send_that_causes_it_stay() {
        let script = vec![
            Action::Connect,
            send(json!({"command": "subscribe"})),
            expect("confirm_subscription", None, true),
            send(json!({"command": "message"})),
            expect("broadcast", None, true),
            close(),
        ];
        assert_eq!(removal(&script, 1), None);
        assert_eq!(removal(&script, 2), None);
        assert_eq!(
            removal(&script, 3),
            Some(vec![
                Action::Connect,
                script[1].clone(),
                script[2].clone(),
                close()
            ])
        );
        // A background expect (wait = false) gates nothing.
        let mut loose = script.clone();
        loose[2] = expect("confirm_subscription", None, false);
        assert!(removal(&loose, 2).is_some());
    }

    /// Eight sends, one expect for eight replies: one send fewer, one reply fewer.
    #[test]
    fn an_uncorrelated_count_follows_its_sends() {
        let mut script = vec![Action::Connect];
        for i in 0..8 {
            script.push(send(json!({"type": "ping", "n": i})));
        }
        script.push(expect(&["pong"; 8].join(" "), None, true));
        script.push(close());
        let out = removal(&script, 3).unwrap();
        let Action::Expect(e) = &out[8] else {
            panic!("{out:?}")
        };
        assert_eq!(e.pattern.len(), 7);
        for kept in reachable(&script).into_iter().take(200) {
            let sends = kept
                .iter()
                .filter(|a| matches!(a, Action::Send { .. }))
                .count();
            for a in &kept {
                if let Action::Expect(e) = a {
                    assert_eq!(e.pattern.len(), sends, "{kept:?}");
                }
            }
        }
        // A fixed pattern of another shape cannot follow one send fewer.
        let mut fixed = script.clone();
        fixed[9] = expect("a b c d e f g h", None, true);
        assert_eq!(removal(&fixed, 3), None);
        // `pong+` takes any count.
        let mut any = script.clone();
        any[9] = expect("pong+", None, true);
        assert_eq!(removal(&any, 3).unwrap()[8], any[9]);
    }

    #[test]
    fn a_rendezvous_goes_with_the_send_it_releases() {
        let script = vec![
            Action::Connect,
            Action::Rendezvous {
                point: 0,
                iteration: 0,
            },
            send(json!({"run_id": "r-1"})),
            expect("done", Some(("run_id", "r-1")), true),
            close(),
        ];
        assert_eq!(removal(&script, 2), Some(vec![Action::Connect, close()]));
        assert_eq!(removal(&script, 0), None, "never the connect");
        assert_eq!(removal(&script, 1).unwrap().len(), 4);
    }

    fn violation(
        oracle: OracleKind,
        jti: &str,
        expected: &str,
        seen: &str,
        corr: Option<&str>,
    ) -> Violation {
        Violation {
            oracle,
            conn: 0,
            user: 0,
            group: "g".into(),
            jti: jti.into(),
            at_ms: 1.0,
            expected: expected.into(),
            seen: seen.into(),
            correlation: corr.map(str::to_string),
            involved: Vec::new(),
            learned: false,
            unreadable: false,
            ended: None,
            window_ms: None,
            late_ms: None,
            after_request_ms: None,
            conn_end_ms: None,
            cut_by_run_ms: None,
            step: None,
            misread: None,
        }
    }

    #[test]
    fn signatures_keep_the_expectation_and_the_kind_of_evidence() {
        let c = OracleKind::Completeness;
        let sig = |v: &Violation| Signature::with_subs(v, &["user-1", "user-12"]);
        let a = violation(
            c,
            "aa~1",
            "next complete",
            "nothing; then server closed with 4401",
            Some("s-0"),
        );
        let b = violation(
            c,
            "bb~2",
            "next complete",
            "nothing; then server closed with 4401",
            Some("s-7"),
        );
        assert_eq!(sig(&a), sig(&b), "other connection, same finding");
        let timeout = violation(c, "aa~1", "next complete within 2s", "nothing", Some("s-0"));
        assert_ne!(
            sig(&a),
            sig(&timeout),
            "a timeout is another kind of evidence"
        );
        let partial = violation(
            c,
            "aa~1",
            "next complete",
            "next; then server closed with 4401",
            Some("s-0"),
        );
        assert_ne!(sig(&a), sig(&partial));
        let other_code = violation(
            c,
            "aa~1",
            "next complete",
            "nothing; then server closed with 1011",
            Some("s-0"),
        );
        assert_ne!(sig(&a), sig(&other_code));
        // A repeat mark is written now, and was not in repros made before: the same.
        let marked = violation(
            c,
            "aa~1",
            "next+ complete",
            "nothing; then server closed with 4401",
            Some("s-0"),
        );
        let unmarked = violation(
            c,
            "aa~1",
            "next complete",
            "nothing; then server closed with 4401",
            Some("s-0"),
        );
        assert_eq!(sig(&marked), sig(&unmarked));
        // The close's reason may name what the run numbered: the code is the evidence.
        let reasoned = violation(
            c,
            "aa~1",
            "next complete",
            "nothing; then server closed with 4401 \"Unauthorized for op-17\"",
            Some("s-3"),
        );
        assert_eq!(sig(&a), sig(&reasoned));
        let other_expect = violation(
            c,
            "aa~1",
            "connection_ack",
            "nothing; then server closed with 4401",
            None,
        );
        assert_ne!(sig(&a), sig(&other_expect), "another expectation");
        let t1 = violation(
            c,
            "aa~1",
            "tool_completed agent_completed within 3s",
            "nothing",
            Some("r-1"),
        );
        let t2 = violation(
            c,
            "aa~1",
            "tool_completed agent_completed within 5s",
            "nothing",
            Some("r-9"),
        );
        assert_eq!(sig(&t1), sig(&t2));
        let cut1 = violation(
            c,
            "aa~1",
            "the script to go on: 3 more steps (send, expect x, close 1000)",
            "server closed with 1013 at step 2 of 5 (expect y)",
            None,
        );
        let cut2 = violation(
            c,
            "aa~1",
            "the script to go on: 1 more step (send)",
            "server closed with 1013 at step 2 of 3 (expect y)",
            None,
        );
        assert_eq!(sig(&cut1), sig(&cut2));
        let id = OracleKind::Identity;
        let i1 = violation(id, "aa~1", "user_id = user-1", "user_id = user-12", None);
        let i2 = violation(id, "bb~1", "user_id = user-12", "user_id = user-1", None);
        assert_eq!(
            sig(&i1),
            sig(&i2),
            "subjects are the connection's, not the finding"
        );
    }

    /// A sequence violation is one finding whatever numbers it names: a counter the whole
    /// server shares (trade ids) never repeats them, and a shrink that compared them said
    /// "did not reproduce (0/5)" of a skip that replayed 5/5. The field, and whether a
    /// number came at all, stay apart.
    #[test]
    fn a_sequence_signature_holds_whatever_numbers_the_counter_reached() {
        let o = OracleKind::Ordering;
        let sig = |v: &Violation| Signature::with_subs(v, &["user-0"]);
        let first = violation(o, "j~1", "t = 3426", "t = 3427", None);
        let later = violation(o, "j~2", "t = 9001", "t = 9003", None);
        let hex = violation(o, "j~1", "number = 101", "number = \"0x66\"", None);
        let hex_later = violation(o, "j~1", "number = 7", "number = \"0xa\"", None);
        assert_eq!(sig(&first), sig(&later));
        assert_eq!(sig(&hex), sig(&hex_later));
        let other_field = violation(o, "j~1", "seq = 3426", "seq = 3427", None);
        assert_ne!(sig(&first), sig(&other_field));
        let no_number = violation(o, "j~1", "integer t", "t = \"abc\"", None);
        assert_ne!(sig(&first), sig(&no_number));
        assert_eq!(sig(&no_number).seen, "t = \"abc\"");
        // Said with its scope and the record's kind since 2026-12-07: the same finding as
        // a repro made before.
        let scoped = violation(o, "j~3", "t = 12 (symbol = ETH)", "t = 14 on update", None);
        assert_eq!(sig(&first), sig(&scoped));
    }

    /// An exclusivity violation of four connections and one of the two a shrunk plan
    /// keeps are one finding: how many met, and the gap in ms, are what shrinking changes.
    /// A repro of 4 connections sharing a file's token never shrank (`4 → 4 connections`)
    /// while its 2-connection copy replayed 3/3. Racing and one-after-the-other stay apart.
    #[test]
    fn an_exclusivity_signature_holds_whatever_the_number_of_connections() {
        let x = OracleKind::Exclusivity;
        let sig = |v: &Violation| Signature::with_subs(v, &["user-0", "user-1", "user-3"]);
        let expected = "at most 1 connection(s) served at once for jti file#1";
        let four = violation(
            x,
            "file#1",
            expected,
            "4 connections each served after the other was accepted",
            None,
        );
        let two = violation(
            x,
            "file#1",
            expected,
            "2 connections each served after the other was accepted",
            None,
        );
        assert_eq!(sig(&four), sig(&two));
        let minted = violation(
            x,
            "3825a7dc63080d42~1f",
            "at most 1 connection(s) served at once for jti 3825a7dc63080d42~1f",
            "3 connections each served after the other was accepted",
            None,
        );
        assert_eq!(sig(&four), sig(&minted), "another token, same finding");
        let apart = |ms: u32, n: u32| {
            violation(
                x,
                "file#1",
                expected,
                &format!(
                    "{n} connections each served after the other was accepted; the last was \
                     opened {ms} ms after the first was accepted, one after the other"
                ),
                None,
            )
        };
        assert_eq!(sig(&apart(150, 4)), sig(&apart(87, 2)));
        assert_ne!(
            sig(&four),
            sig(&apart(150, 4)),
            "racing is not one after the other"
        );
        let two_allowed = violation(
            x,
            "file#1",
            "at most 2 connection(s) served at once for jti file#1",
            "3 connections each served after the other was accepted",
            None,
        );
        assert_ne!(sig(&four), sig(&two_allowed), "another limit");
    }

    /// A file's (a list's, a command's) tokens go to the valid slots in turn, so a subset
    /// keeps every slot where it was: its connections present the tokens they did, and two
    /// that shared one still do. Minted tokens are re-indexed as before.
    #[test]
    fn a_subset_keeps_the_slots_of_a_token_source() {
        let text = |tokens: &str| {
            format!(
                "name = \"s\"\nduration = \"1s\"\n[auth]\n{tokens}\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{{ close = 1000 }}]\n"
            )
        };
        let file = text("tokens = { file = \"tokens.txt\" }");
        let scenario = crate::scenario::load_str(&file, "s.toml").unwrap();
        let plan = crate::plan::build(&scenario, 1);
        assert_eq!(plan.tokens.len(), 4);
        // With two tokens in the file, slots 1 and 3 share the second: keep them.
        let kept = [plan.conns[1].id, plan.conns[3].id];
        let subset = subset_plan(&plan, &kept);
        assert_eq!(subset.tokens, plan.tokens);
        let slots: Vec<u32> = subset.conns.iter().map(|c| c.token).collect();
        let before: Vec<u32> = [&plan.conns[1], &plan.conns[3]]
            .iter()
            .map(|c| c.token)
            .collect();
        assert_eq!(slots, before);

        let minted = crate::scenario::load_str(&text(""), "s.toml").unwrap();
        let plan = crate::plan::build(&minted, 1);
        let subset = subset_plan(&plan, &[plan.conns[1].id, plan.conns[3].id]);
        assert_eq!(subset.tokens.len(), 2);
        let slots: Vec<u32> = subset.conns.iter().map(|c| c.token).collect();
        assert_eq!(slots, [0, 1]);
    }

    #[test]
    fn split_covers_everything_in_n_chunks() {
        let items: Vec<u32> = (0..7).collect();
        let chunks = split(&items, 3);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), items);
        assert_eq!(complement(&items, &chunks[0]), vec![3, 4, 5, 6]);
    }
}
