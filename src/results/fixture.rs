//! A hand-made summary for the results and report modules' unit tests.

use super::*;
use crate::model::{Cause, OracleKind, StopReason, Verdict};

/// A judged threshold that was breached: `turn.p99 < 1ms`, measured 2 ms.
pub(crate) fn breached_threshold() -> ThresholdResult {
    ThresholdResult {
        metric: "turn.p99".into(),
        op: crate::model::ThresholdOp::Lt,
        limit: 1.0,
        condition: "< 1ms".into(),
        actual: Some(2.0),
        passed: false,
        judged: true,
        message: "turn.p99 = 2ms, limit < 1ms: BREACHED".into(),
    }
}

pub(crate) fn phase(count: u64, p50_ms: f64, p99_ms: f64) -> PhaseStats {
    PhaseStats {
        count,
        p50_ms,
        p90_ms: p50_ms * 1.5,
        p99_ms,
        p999_ms: p99_ms * 1.2,
        max_ms: p99_ms * 2.0,
        mean_ms: p50_ms * 1.1,
    }
}

pub(crate) fn violation(oracle: OracleKind, at_ms: f64) -> Violation {
    Violation {
        oracle,
        conn: 7,
        user: 3,
        group: "chatters".into(),
        jti: "jti-7".into(),
        at_ms,
        expected: "agent_completed for run-7-1".into(),
        seen: "<close 1011> & \"nothing\"".into(),
        correlation: Some("run-7-1".into()),
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

/// 1000 attempted, 990 accepted, 6 rejected, 4 failed; turn p99 2310 ms; 2 completeness
/// violations; 10 s elapsed.
pub(crate) fn summary() -> Summary {
    let counters = Counters {
        attempted: 1000,
        accepted: 990,
        rejected: 6,
        failed: 4,
        refused_by: [(Cause::Http(409), 6)].into(),
        ended_by: [(Cause::ClientClose(1000), 980), (Cause::Reset, 10)].into(),
        messages_sent: 3000,
        messages_received: 15000,
        ..Counters::default()
    };
    Summary {
        schema_version: SCHEMA_VERSION,
        tool_version: "0.1.0".into(),
        scenario: "golden <path>".into(),
        scenario_hash: "ab".repeat(32),
        scenario_content_hash: "ef".repeat(32),
        seed: 7,
        plan_hash: "cd".repeat(32),
        target: "ws://127.0.0.1:9/ws".into(),
        embedded_target: true,
        planted_bug: None,
        started_at: "2025-01-01T00:00:00+00:00".into(),
        elapsed_ms: 10_000.0,
        duration_ms: 30_000.0,
        stopped: StopReason::Completed,
        connections_planned: 1000,
        connections_accepted: 990,
        counters,
        received_per_sec: 1500.0,
        phases: [
            ("upgrade".to_string(), phase(990, 0.4, 3.0)),
            ("turn".to_string(), phase(2970, 800.0, 2310.0)),
        ]
        .into(),
        turns: Default::default(),
        events: [
            (
                "agent_started".to_string(),
                EventRate {
                    expected: 3000,
                    arrived: 3000,
                    rate: 1.0,
                },
            ),
            (
                "agent_completed".to_string(),
                EventRate {
                    expected: 3000,
                    arrived: 2970,
                    rate: 0.99,
                },
            ),
        ]
        .into(),
        violations: ViolationSummary {
            total: 2,
            by_oracle: [(OracleKind::Completeness, 2)].into(),
            first: vec![
                violation(OracleKind::Completeness, 1200.5),
                violation(OracleKind::Completeness, 4800.0),
            ],
        },
        lenient: Default::default(),
        barriers: Vec::new(),
        warnings: Vec::new(),
        releases_raised: None,
        probe: Default::default(),
        verdict: Verdict::Clean,
        shard: None,
        merged_from: None,
        source_addrs: Vec::new(),
        learned: Default::default(),
        oracles: vec![
            OracleKind::Completeness,
            OracleKind::Identity,
            OracleKind::Ordering,
        ],
        rate_limiting_may_explain: false,
        server_went_away: false,
        undeclared_takeover: Vec::new(),
        hint: None,
        answers: Vec::new(),
        thresholds: Vec::new(),
        coverage: Default::default(),
        generator: GeneratorSummary {
            lag_p50_ms: 0.1,
            lag_p99_ms: 0.9,
            lag_max_ms: 2.0,
            fell_behind: false,
            client_stalls: Default::default(),
        },
    }
}
