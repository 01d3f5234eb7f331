//! Shrinking a repro to the few connections, actions and offsets its race needs.
//!
//! Why delta debugging and not proptest's shrinker: proptest shrinks values through the
//! strategies that generated them, and assumes a deterministic test. A repro is a recorded
//! artifact (possibly hand-edited, from any round) whose "test" is a flaky, expensive run
//! against a live server. `ddmin` over the artifact, with a rate threshold as the test,
//! fits that: every candidate is a valid plan by construction (we only remove or move
//! things), and a candidate is kept only if it still breaks the *same* oracle at a rate not
//! far below the original, so shrinking neither drifts to another bug nor to a rarer repro.

use super::HuntError as Error;
use super::{Rate, Repro, Runner, Short};
use crate::model::{Action, Plan};
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
}

struct Shrinker<'a> {
    runner: &'a Runner,
    repro: &'a Repro,
    opts: ShrinkOptions,
    need: u32,
    tried: u32,
    /// When the candidates' share of the budget ends.
    candidates_end: Instant,
    /// Set when the budget or Ctrl-C stopped the search.
    short: Option<Short>,
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
        let measured = self
            .runner
            .measure(
                plan,
                self.repro.oracle,
                self.opts.times,
                Some(self.need),
                Some(self.candidates_end),
            )
            .await?;
        if let Some(short) = measured.rate.short {
            self.short = Some(short);
        }
        Ok(measured.rate.reproduced >= self.need)
    }
}

/// Shrinks `repro`: connections (the involved ones first, then ddmin), actions, then time.
/// Everything fits in `opts.budget`: the rate after gets as long as the rate before took
/// (the shrunk plan is no bigger), and the candidates get the rest.
pub async fn shrink(
    repro: &Repro,
    runner: &Runner,
    opts: ShrinkOptions,
) -> Result<ShrinkOutcome, Error> {
    let started = Instant::now();
    let budget_end = started + opts.budget;
    let before = runner
        .measure(
            &repro.plan,
            repro.oracle,
            opts.times,
            None,
            Some(budget_end),
        )
        .await?
        .rate;
    let reserve = started.elapsed();
    // Accept candidates reproducing at no less than half the original rate (at least once).
    let need = ((f64::from(before.reproduced) / 2.0).ceil() as u32).max(1);
    let mut s = Shrinker {
        runner,
        repro,
        opts,
        need,
        tried: 0,
        candidates_end: budget_end.checked_sub(reserve).unwrap_or(started),
        short: None,
    };
    let mut plan = repro.plan.clone();
    if before.reproduced > 0 {
        plan = shrink_connections(&mut s, plan).await?;
        plan = shrink_actions(&mut s, plan).await?;
        plan = shrink_time(&mut s, plan).await?;
    }
    // The rate after also brings fresh evidence: a shrunk repro must not show the
    // original's connections.
    let after = runner
        .measure(&plan, repro.oracle, opts.times, None, Some(budget_end))
        .await?;
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
    })
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

/// Drops single actions (never the connect), last first, keeping each drop that still fails.
/// A `send` goes together with the expectations that wait for its answer (those before the
/// next send or connect): an expectation left without its request fails on any server, so
/// keeping it would turn the repro into one that "reproduces" against a correct server too.
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
            if matches!(current[ai], Action::Connect | Action::AbortHandshake { .. }) {
                continue;
            }
            let mut actions = current.clone();
            if matches!(actions[ai], Action::Send { .. } | Action::SendText { .. }) {
                let answers: Vec<usize> = (ai + 1..actions.len())
                    .take_while(|&k| {
                        !matches!(
                            actions[k],
                            Action::Send { .. }
                                | Action::SendText { .. }
                                | Action::Connect
                                | Action::Reconnect { .. }
                        )
                    })
                    .filter(|&k| matches!(actions[k], Action::Expect(_)))
                    .collect();
                for k in answers.into_iter().rev() {
                    actions.remove(k);
                }
            }
            actions.remove(ai);
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

/// The plan restricted to `ids`, with token slots re-indexed.
fn subset_plan(plan: &Plan, ids: &[u32]) -> Plan {
    let mut out = plan.clone();
    out.conns.retain(|c| ids.contains(&c.id));
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

    #[test]
    fn split_covers_everything_in_n_chunks() {
        let items: Vec<u32> = (0..7).collect();
        let chunks = split(&items, 3);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), items);
        assert_eq!(complement(&items, &chunks[0]), vec![3, 4, 5, 6]);
    }
}
