//! Token expiry: a scenario whose `[auth] ttl` is shorter than its script has its
//! connections closed (Close 4001 "token expired", say) or their reconnects refused (a
//! 401) by a server that enforces `exp`, once their token's `exp` passed. That is the
//! scenario's own misconfiguration, never a race: the swarm marks such ends
//! ([`Attempt::token_expired`]), what their scripts had left is no finding, and the
//! verdict is inconclusive with a hint that says what to change. `validate` warns before
//! any run ([`crate::plan::expiring`]).

use crate::model::{token_lifetime, Attempt, ConnReport, Plan};
use crate::plan::least_time;
use std::collections::BTreeMap;
use std::time::Duration;

/// The note on the attempts the server closed or refused after their token expired,
/// with the `ttl` and the least time the scripts take, and what to change: "the server
/// closed 2 connections and refused 2 reconnects after their token expired (ttl 2s,
/// scripts run at least 3s): raise \[auth\] ttl or shorten the script; …". `None` when it
/// ended none so.
pub fn note(plan: &Plan, reports: &[ConnReport]) -> Option<String> {
    let (mut closed, mut refused, mut reconnects) = (0u64, 0u64, 0u64);
    let mut conns = Vec::new();
    for r in reports {
        for (i, a) in r.attempts.iter().enumerate() {
            closed += u64::from(a.closed_expired());
            refused += u64::from(a.refused_expired());
            reconnects += u64::from(a.refused_expired() && i > 0);
        }
        if r.attempts.iter().any(expired) {
            conns.push(r.id);
        }
    }
    if closed + refused == 0 {
        return None;
    }
    let mut ended = Vec::new();
    if closed > 0 {
        ended.push(format!(
            "closed {}",
            crate::model::words::plural(closed, "connection")
        ));
    }
    if refused > 0 {
        let what = if reconnects == refused {
            "reconnect"
        } else {
            "attempt"
        };
        ended.push(format!(
            "refused {}",
            crate::model::words::plural(refused, what)
        ));
    }
    let ttl = token_lifetime(plan.auth.ttl);
    let scripts = match longest_script(plan, &conns) {
        Some(script) if script > ttl => format!(", scripts run at least {script:?}"),
        _ => String::new(),
    };
    Some(format!(
        "the server {} after their token expired (ttl {ttl:?}{scripts}): raise [auth] ttl or \
         shorten the script; the scenario's own tokens ran out, so what their scripts had \
         left is no finding",
        ended.join(" and ")
    ))
}

/// Whether the server closed or refused `a` after its token expired.
fn expired(a: &Attempt) -> bool {
    a.closed_expired() || a.refused_expired()
}

/// The longest of the least times ([`least_time`]) the scripts of connections `conns`
/// take; `None` when none has a script of its group's (a plan of explicit actions).
fn longest_script(plan: &Plan, conns: &[u32]) -> Option<Duration> {
    let group_of: BTreeMap<u32, u32> = plan.conns.iter().map(|c| (c.id, c.group)).collect();
    let mut groups: Vec<u32> = conns
        .iter()
        .filter_map(|id| group_of.get(id).copied())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .iter()
        .filter_map(|g| plan.scripts.get(*g as usize))
        .filter(|steps| !steps.is_empty())
        .map(|steps| least_time(steps))
        .max()
}
