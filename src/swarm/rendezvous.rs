//! Message rendezvous at run time: the meetings of each point.
//!
//! A plan keeps repeats as loops, so a `rendezvous` inside a `repeat` is one point with one
//! meeting per iteration ([`Action::Rendezvous`]'s `iteration`). Meetings are made when the
//! first member arrives, not up front, and summarized and dropped once they are well
//! behind (a few dozen later meetings of the same point made): a rendezvous in a million-
//! iteration loop holds a bounded number of meetings, and the summary lists the first
//! [`LISTED`] of each point and counts the rest.
//!
//! Who a meeting waits for: every scripted connection of the point's group (each walks
//! every iteration) and every connection with explicit actions (a shrunk or older plan)
//! whose actions hold that meeting; less those counted absent from the point, because
//! they reached it without an open connection (refused, lost: they walk on at once, and
//! would otherwise be waited for until the timeout). A connection stays counted absent
//! until it arrives at the point again with an open connection. Counting absence per
//! point, not per meeting, is what keeps a lost connection that walks through a long loop
//! from making a meeting per iteration.

use super::barrier::{Arrival, Barrier, Quorum};
use crate::model::{Action, BarrierStats, Plan, RendezvousInfo, RendezvousPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Meetings of one point listed in the summary; later ones are counted.
const LISTED: usize = RendezvousInfo::MEETINGS_LISTED;

/// Released meetings of one point kept (so a late member still finds its meeting released
/// and goes straight through) before the oldest is summarized and dropped.
const KEPT: usize = 64;

/// Every point's meetings.
pub(crate) struct Meetings {
    plan: Arc<Plan>,
    t0: Instant,
    run_cancel: CancellationToken,
    points: Vec<Point>,
}

struct Point {
    /// Scripted connections of the point's group: members of every meeting.
    scripted: usize,
    /// Connections with explicit actions, by the meetings their actions hold.
    explicit: BTreeMap<u64, usize>,
    /// Members counted absent (module docs).
    absent: Arc<AtomicUsize>,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// Meetings made and not yet summarized, by iteration.
    open: BTreeMap<u64, Arc<Barrier>>,
    /// Meetings below this iteration are summarized and gone: an arrival there is late.
    retired_below: u64,
    /// Summaries of the first [`LISTED`] meetings, in iteration order.
    listed: Vec<BarrierStats>,
    /// Meetings summarized after those.
    unlisted: u64,
}

impl Meetings {
    /// No meeting yet; who belongs to which comes from `plan`'s connections.
    pub fn new(plan: Arc<Plan>, t0: Instant, run_cancel: CancellationToken) -> Self {
        let mut points: Vec<Point> = plan
            .rendezvous
            .iter()
            .map(|p| Point {
                scripted: plan
                    .conns
                    .iter()
                    .filter(|c| c.is_scripted() && c.group == p.group)
                    .count(),
                explicit: BTreeMap::new(),
                absent: Arc::default(),
                live: Mutex::default(),
            })
            .collect();
        for conn in plan.conns.iter().filter(|c| !c.is_scripted()) {
            let held: BTreeSet<(u32, u64)> = conn
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Rendezvous { point, iteration } => Some((*point, *iteration)),
                    _ => None,
                })
                .collect();
            for (point, iteration) in held {
                if let Some(p) = points.get_mut(point as usize) {
                    *p.explicit.entry(iteration).or_default() += 1;
                }
            }
        }
        Meetings {
            plan,
            t0,
            run_cancel,
            points,
        }
    }

    /// The meeting `iteration` of `point`, made if it is the first arrival; `None` for a
    /// point the plan does not have or a meeting already summarized (the arrival is late:
    /// its send goes straight out).
    pub fn meeting(&self, point: u32, iteration: u64) -> Option<Arc<Barrier>> {
        let p = self.points.get(point as usize)?;
        let spec = self.plan.rendezvous.get(point as usize)?;
        let mut live = p.live.lock().ok()?;
        if let Some(meeting) = live.open.get(&iteration) {
            return Some(meeting.clone());
        }
        if iteration < live.retired_below {
            return None;
        }
        let members = p
            .scripted
            .saturating_add(p.explicit.get(&iteration).copied().unwrap_or(0));
        let quorum = Quorum {
            count: (spec.count as usize).min(members),
            members,
            absent: p.absent.clone(),
            timeout: spec.timeout,
        };
        let meeting = Barrier::rendezvous(self.run_cancel.child_token(), self.t0, quorum);
        live.open.insert(iteration, meeting.clone());
        self.retire_released(point, &mut live);
        Some(meeting)
    }

    /// A member reached `point` unable to take part: nobody waits for it there any more.
    pub fn absent(&self, point: u32) {
        let Some(p) = self.points.get(point as usize) else {
            return;
        };
        p.absent.fetch_add(1, Ordering::AcqRel);
        // Meetings waiting for it may be complete now.
        let open: Vec<Arc<Barrier>> = match p.live.lock() {
            Ok(live) => live.open.values().cloned().collect(),
            Err(_) => return,
        };
        for meeting in open {
            meeting.recheck();
        }
    }

    /// A member counted absent from `point` arrived there again.
    pub fn present(&self, point: u32) {
        if let Some(p) = self.points.get(point as usize) {
            let _ = p
                .absent
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Summarizes the oldest meetings while more than [`KEPT`] are open and the oldest has
    /// been released (one still waiting is released by its timeout soon).
    fn retire_released(&self, point: u32, live: &mut Live) {
        while live.open.len() > KEPT {
            let Some(entry) = live.open.first_entry() else {
                return;
            };
            if entry.get().fired_us.load(Ordering::Acquire) == u64::MAX {
                return;
            }
            let (iteration, meeting) = entry.remove_entry();
            live.retired_below = iteration.saturating_add(1);
            self.summarize(point, iteration, &meeting, live);
        }
    }

    fn summarize(&self, point: u32, iteration: u64, meeting: &Barrier, live: &mut Live) {
        if live.listed.len() < LISTED {
            live.listed
                .push(self.stats(point, Some((iteration, meeting))));
        } else {
            live.unlisted = live.unlisted.saturating_add(1);
        }
    }

    /// How every meeting released, point by point: the listed ones, the last of a point
    /// with the count of those not listed; a point nobody reached, one entry saying so.
    /// Takes the meetings still open; call it once the connections are done.
    pub fn summary(&self) -> Vec<BarrierStats> {
        let mut out = Vec::new();
        for (index, p) in self.points.iter().enumerate() {
            let point = index as u32;
            let Ok(mut live) = p.live.lock() else {
                continue;
            };
            for (iteration, meeting) in std::mem::take(&mut live.open) {
                self.summarize(point, iteration, &meeting, &mut live);
            }
            let mut listed = std::mem::take(&mut live.listed);
            if listed.is_empty() {
                listed.push(self.stats(point, None));
            }
            if let Some(rv) = listed.last_mut().and_then(|b| b.rendezvous.as_mut()) {
                rv.more_meetings = live.unlisted;
            }
            out.extend(listed);
        }
        out
    }

    /// One meeting's entry: who was a member, who arrived, who was missing, and the
    /// spread of the held bytes' writes after the release. `None`: nobody arrived at any
    /// meeting of the point.
    fn stats(&self, point: u32, meeting: Option<(u64, &Barrier)>) -> BarrierStats {
        let plan = &self.plan;
        let spec: Option<&RendezvousPlan> = plan.rendezvous.get(point as usize);
        let group = spec.map_or(u32::MAX, |s| s.group);
        let iteration = meeting.map_or(0, |(i, _)| i);
        let members: Vec<u32> = plan
            .conns
            .iter()
            .filter(|c| {
                if c.is_scripted() {
                    c.group == group
                } else {
                    c.actions.iter().any(|a| {
                        matches!(a, Action::Rendezvous { point: p, iteration: i }
                            if *p == point && *i == iteration)
                    })
                }
            })
            .map(|c| c.id)
            .collect();
        let (fired, arrivals, timed_out, count) = match meeting {
            Some((_, m)) => (
                m.fired_us.load(Ordering::Acquire),
                m.arrivals(),
                m.timed_out.load(Ordering::Acquire),
                m.quorum().map(|q| q.count as u32),
            ),
            None => (u64::MAX, Vec::new(), false, None),
        };
        let arrived: BTreeSet<u32> = arrivals.iter().map(|a: &Arrival| a.conn).collect();
        let missing: Vec<u32> = members
            .iter()
            .copied()
            .filter(|id| !arrived.contains(id))
            .collect();
        let lags: Vec<u64> = arrivals
            .iter()
            .filter(|_| fired != u64::MAX)
            .filter_map(|a| a.sent_at.get())
            .map(|at| {
                (at.saturating_duration_since(self.t0).as_micros() as u64).saturating_sub(fired)
            })
            .collect();
        let group = plan.groups.get(group as usize).cloned().unwrap_or_default();
        BarrierStats {
            rendezvous: Some(RendezvousInfo {
                step: spec.map_or(0, |s| s.step).saturating_add(1),
                iteration: spec.filter(|s| s.meetings > 1).map(|_| iteration),
                count: count.unwrap_or_else(|| spec.map_or(0, |s| s.count)),
                arrived: arrivals.len(),
                timed_out,
                missing_total: missing.len(),
                missing: missing
                    .into_iter()
                    .take(RendezvousInfo::MISSING_SHOWN)
                    .collect(),
                more_meetings: 0,
            }),
            ..BarrierStats::of_release(group, members.len(), lags, fired)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::OnceLock;

    fn meetings(users: u32, steps: &str) -> Meetings {
        let text = format!(
            "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = {users}\nsteps = [{steps}]\n"
        );
        let s = crate::scenario::load_str(&text, "t.toml").unwrap();
        let plan = crate::plan::build(&s, 1);
        Meetings::new(Arc::new(plan), Instant::now(), CancellationToken::new())
    }

    fn arrive(meeting: &Barrier, conn: u32) {
        let sent_at: Arc<OnceLock<Instant>> = Arc::default();
        assert!(meeting.park(None, vec![0], sent_at, Some(conn)).is_some());
    }

    fn fired(meeting: &Barrier) -> bool {
        meeting.fired_us.load(Ordering::Acquire) != u64::MAX
    }

    #[test]
    fn a_long_loop_keeps_few_meetings_and_lists_the_first() {
        let m = meetings(
            1,
            "{ repeat = 300, steps = [{ rendezvous = 1 }, { send = { type = \"go\" } }] }",
        );
        for i in 0..300 {
            let meeting = m.meeting(0, i).unwrap();
            arrive(&meeting, 0);
            assert!(fired(&meeting), "the only member released meeting {i}");
            assert!(m.points[0].live.lock().unwrap().open.len() <= KEPT + 1);
        }
        // An early meeting is summarized and gone: a late arrival goes straight through.
        assert!(m.meeting(0, 3).is_none());
        let summary = m.summary();
        assert_eq!(summary.len(), LISTED);
        for (i, b) in summary.iter().enumerate() {
            let rv = b.rendezvous.as_ref().unwrap();
            assert_eq!((rv.step, rv.iteration, rv.arrived), (1, Some(i as u64), 1));
            assert_eq!(b.connections, 1);
        }
        let last = summary.last().unwrap().rendezvous.as_ref().unwrap();
        assert_eq!(last.more_meetings, 300 - LISTED as u64);
    }

    #[test]
    fn nobody_waits_for_a_member_counted_absent() {
        let m = meetings(
            3,
            "{ rendezvous = \"all\" }, { send = { type = \"go\" } }, \
             { rendezvous = \"all\" }, { send = { type = \"go\" } }",
        );
        // Point 0: two arrive, then the third is counted absent: that completes it.
        let first = m.meeting(0, 0).unwrap();
        arrive(&first, 0);
        arrive(&first, 1);
        assert!(!fired(&first), "waits for the third");
        m.absent(0);
        assert!(fired(&first));
        // Point 1: counted absent before anyone arrives; it comes back, so all three count.
        m.absent(1);
        m.present(1);
        let second = m.meeting(1, 0).unwrap();
        arrive(&second, 0);
        arrive(&second, 1);
        assert!(!fired(&second));
        arrive(&second, 2);
        assert!(fired(&second));
        let summary = m.summary();
        let rv = summary[0].rendezvous.as_ref().unwrap();
        assert_eq!((rv.arrived, rv.missing.as_slice()), (2, &[2u32][..]));
        assert_eq!(rv.iteration, None, "not in a repeat");
        let rv = summary[1].rendezvous.as_ref().unwrap();
        assert_eq!((rv.arrived, rv.missing_total), (3, 0));
    }

    #[test]
    fn a_point_nobody_reached_says_so() {
        let m = meetings(2, "{ rendezvous = 2 }, { send = { type = \"go\" } }");
        let summary = m.summary();
        assert_eq!(summary.len(), 1);
        let rv = summary[0].rendezvous.as_ref().unwrap();
        assert_eq!((rv.arrived, rv.missing_total, rv.count), (0, 2, 2));
        assert_eq!(summary[0].fired_ms, 0.0);
    }
}
