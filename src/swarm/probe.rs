//! The probe phase: after the run (and a quiet period), reconnect with every valid token
//! used once more. A refusal means the server still holds a session nobody has: a leak,
//! the most common way a race leaves state behind (docs/race-patterns.md, "Leaked
//! sessions").

use super::RunCtx;
use crate::model::{Cause, ConnReport, Outcome, Placement, Probe};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Probes in flight at once: enough to be quick, few enough not to be a burst of its own.
const PARALLEL: usize = 32;
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes every valid token slot that some attempt used, after `quiet` when any attempt
/// ended uncleanly (the server may still be cleaning up).
pub(super) async fn run(
    ctx: &std::sync::Arc<RunCtx>,
    reports: &[ConnReport],
    quiet: Duration,
) -> Vec<Probe> {
    let unclean = reports
        .iter()
        .flat_map(|r| &r.attempts)
        .any(|a| !a.clean_end && a.outcome != Outcome::Rejected);
    if unclean {
        tokio::time::sleep(quiet).await;
    }
    // Only tokens the server may have held a session for: accepted, or fate unknown.
    let used: BTreeSet<u32> = reports
        .iter()
        .filter(|r| {
            r.attempts
                .iter()
                .any(|a| a.outcome == Outcome::Accepted || a.indeterminate())
        })
        .map(|r| r.token)
        .collect();
    // Each token is presented the way its first connection presented it; one pass, not a
    // search per token.
    let mut placements = std::collections::BTreeMap::new();
    for conn in &ctx.plan.conns {
        placements
            .entry(conn.token)
            .or_insert_with(|| ctx.plan.placement_of(conn).clone());
    }
    let mut tasks = JoinSet::new();
    let mut out = Vec::new();
    for slot in used {
        let valid = ctx
            .tokens
            .get(slot as usize)
            .is_some_and(|t| !t.must_reject() && t.is_placed());
        if !valid {
            continue;
        }
        if tasks.len() >= PARALLEL {
            if let Some(Ok(p)) = tasks.join_next().await {
                out.push(p);
            }
        }
        let placement = placements
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| ctx.plan.auth.placement.clone());
        tasks.spawn(probe_one(ctx.clone(), slot, placement));
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok(p) = joined {
            out.push(p);
        }
    }
    out.sort_by_key(|p| p.token);
    out
}

async fn probe_one(ctx: std::sync::Arc<RunCtx>, slot: u32, placement: Placement) -> Probe {
    let token = &ctx.tokens[slot as usize];
    let placement = &placement;
    // Bounded on its own: an unanswered probe is inconclusive (only a clean refusal counts
    // as a leak), so there is no point waiting out a long handshake timeout.
    let dial = ctx.dialer.dial(token, (placement, &ctx.extras), None);
    let result = match tokio::time::timeout(PROBE_TIMEOUT, dial).await {
        Ok(dialed) => dialed.result,
        Err(_) => Err(super::dial::DialFailure {
            answer: None,
            cause: Cause::Timeout("probe"),
            rejected: false,
        }),
    };
    let (accepted, cause) = match result {
        Ok(mut ws) => {
            // In-band auth: present the token the same way the run did.
            if let Some(text) = crate::auth::first_message(placement, token) {
                let _ = ws.send(Message::Text(text.into())).await;
            }
            // A policy close as the first frame is a refusal too.
            let first = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            let refused = match first {
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    Some(super::dial::close_cause(&ws, Some(&f)))
                }
                _ => None,
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
            let _ = ws.flush().await;
            (refused.is_none(), refused)
        }
        Err(f) => (false, Some(f.cause)),
    };
    Probe {
        token: slot,
        jti: token.jti.clone(),
        accepted,
        cause,
        at_us: ctx.t0.elapsed().as_micros() as u64,
    }
}
