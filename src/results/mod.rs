//! A run's results as data: the summary, the files in `results/<scenario>/<stamp>/`
//! (written atomically, read back), `compare` between runs and `[thresholds]`.
//!
//! Everything here works on values; formatting them for people is `report`'s job.

pub mod compare;
#[cfg(test)]
pub(crate) mod fixture;
pub mod hlog;
pub mod merge;
pub mod read;
pub mod thresholds;
mod write;

pub use compare::{compare, CompareError, CompareOptions, Comparison};
pub use merge::{merge, MergeError, MergedRun};
pub use read::{
    find_runs, newest_run, read_run, run_dirs, FoundRuns, NewestRun, ReadError, RunData,
};
pub use thresholds::{evaluate, judged_thresholds, ThresholdResult};
pub use write::{results_dir, write_all, write_atomic, write_merged, WriteError};

use crate::metrics::{Histograms, IntervalSeries, PhaseStats};
use crate::model::{
    Answer, BarrierStats, ClientStalls, Counters, LearnedOracles, LenientAcceptance, OracleKind,
    Phase, Plan, Shard, StopReason, Threshold, Verdict, Violation,
};
use crate::oracle::session::Coverage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a field changes meaning. 2: `counters` is [`Counters`] as is (with
/// `aborted`), `received_per_sec` moved to the top level; version 1 files still read.
pub const SCHEMA_VERSION: u32 = 2;
/// Distinct answers (one per cause) kept in the summary.
pub const MAX_ANSWERS: usize = 8;
/// Violations listed in the summary; all of them go to `violations.jsonl`.
pub(crate) const SUMMARY_VIOLATIONS: usize = 100;
/// Lenient acceptances listed in the summary (all of them are counted).
const SUMMARY_LENIENT: usize = 20;
/// Generator lag p99 above this means the load generator could not keep its schedule.
pub(crate) const LAG_LIMIT_MS: f64 = 5.0;

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_hash: String,
    /// The scenario's content hash ([`crate::model::Scenario::content_hash`]): runs of one
    /// scenario whose file differs only in comments or layout share it, and `compare`
    /// reads it when both runs have one. Absent in results written before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scenario_content_hash: String,
    pub seed: u64,
    pub plan_hash: String,
    pub target: String,
    pub embedded_target: bool,
    /// The race planted in the built-in reference server the run ran against (`run --bug
    /// NAME`), so that its results never read as a run against the correct server. Absent
    /// otherwise, and in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<PlantedBug>,
    pub started_at: String,
    pub elapsed_ms: f64,
    pub duration_ms: f64,
    pub stopped: StopReason,
    pub connections_planned: usize,
    /// Of them, those the server accepted at least once (a connection's reconnects count
    /// once): what the verdict's "on N connections" counts, and a merge adds up.
    #[serde(default)]
    pub connections_accepted: u64,
    pub counters: Counters,
    /// Messages received per second of the run.
    #[serde(default)]
    pub received_per_sec: f64,
    pub phases: BTreeMap<String, PhaseStats>,
    /// Turn latency of each named `expect` (`name = "ack"`), like the `turn` phase but for
    /// that expectation alone. Absent when no expectation is named.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub turns: BTreeMap<String, PhaseStats>,
    pub events: BTreeMap<String, EventRate>,
    pub violations: ViolationSummary,
    /// Bad tokens the server accepted where refusing them is its policy: a finding, not a
    /// violation. Absent from files written before it existed (then empty).
    #[serde(default)]
    pub lenient: LenientSummary,
    pub generator: GeneratorSummary,
    #[serde(default)]
    pub verdict: Verdict,
    /// The oracles that were on in this run.
    #[serde(default)]
    pub oracles: Vec<OracleKind>,
    /// One line on what the verdict means and what to do (absent when clean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Every violation of a `violations` verdict may be the server's rate limiting, which
    /// the scenario does not declare (closes before acceptance with a 4429, a 1008 "too
    /// many connections": the hint says how to declare it). A hunt stops there: a repro
    /// would only show that policy again. Absent from files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rate_limiting_may_explain: bool,
    /// The server closed the connections it had open at once saying it was going down (a
    /// Close 1012, a 1001 "restarting" or bare to many): a restart or deploy under an
    /// inconclusive run. A hunt then blames no round for the target it finds down after
    /// (no broken-target finding: someone stopped it). Absent from files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_went_away: bool,
    /// Close codes that ended connections in a way that reads as a takeover by another
    /// connection of the same token, which the scenario does not declare
    /// (`[oracles] reject.replaced`), ascending. The battery's `same-token` family reads
    /// them from its calibration as the target's policy. Absent from files when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undeclared_takeover: Vec<u16>,
    /// What the server answered instead of a 101, one per cause (at most
    /// [`MAX_ANSWERS`]): the status line and the first bytes of the body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// Each `[thresholds]` entry: metric, value, limit, met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
    #[serde(default)]
    pub coverage: Coverage,
    /// The probe phase: tokens reconnected after the run, and how many were refused.
    #[serde(default)]
    pub probe: ProbeSummary,
    /// Collide barriers and message rendezvous meetings: how tightly each released its
    /// connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub barriers: Vec<BarrierStats>,
    /// For a run with releases: whether its threads ran raised above a co-located
    /// server's at them (`stampede::priority`; false where the process may not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases_raised: Option<bool>,
    /// The slice of the plan this run held (`--shard`); absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a merged result (`stampede merge`): how many runs it combines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<usize>,
    /// The local addresses its connections were made from, in turn (`--source-addr`, or
    /// each `--workers` process's own loopback addresses; a merge lists every part's, in
    /// order of first appearance); empty when the system chose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_addrs: Vec<std::net::IpAddr>,
    /// The invariants calibration learned and the run checked beside the declared oracles
    /// (also in `learned.toml`); absent when nothing was learned or learning was off.
    #[serde(default, skip_serializing_if = "LearnedOracles::is_empty")]
    pub learned: LearnedOracles,
    /// What keeps the figures from meaning what a single run's do, in words: a merged
    /// result's warnings (shards that started far apart, parts planned for different
    /// durations), kept so that `stampede report` says them after the merge printed them.
    /// Absent from files when empty, so a run without warnings writes what it wrote before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Tokens reconnected after the run; a clean refusal is a leaked session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// Tokens to probe: every valid token some attempt used.
    pub tokens: usize,
    /// Probes the server answered with a refusal (an HTTP status or a Close frame).
    pub refused: usize,
    /// Probes that proved nothing: no answer within the probe's timeout, no connection,
    /// shed under load (HTTP 429/503, a close 1013 or a `reject.shed` code), or cut by the
    /// probe phase's bound (`duration` + 5 s) or by Ctrl-C.
    #[serde(default)]
    pub inconclusive: usize,
    /// Of the inconclusive probes, those the server shed: the server answered, but with
    /// "not now" (policy), which says nothing about a session still held. Absent (0) in
    /// results written before it was counted.
    #[serde(default)]
    pub shed: usize,
    /// How the shed probes were shed, each way once, in words (`declared shed code
    /// 4429`, `close 1013`, `HTTP 503`), in the order first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shed_by: Vec<String>,
    /// Of the refused probes, those refused with "who are you" (HTTP 401 or 403, a close
    /// 4401 or 4403, the declared refusal message): the server takes a token once or
    /// revokes it when its session closes, its policy, not a session it still holds
    /// (never a liveness violation). Left out of files when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_by_policy: usize,
    /// Of the refused probes, those whose token had expired (a minted token past its
    /// `exp`: the scenario's `ttl` ran out): refused for that alone, they prove nothing
    /// about a session still held. Left out of files when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_expired: usize,
    /// Whether the run carried no token (`[auth] placement = "none"`): each probe is a
    /// connection tried again, no token presented. Left out of files when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_token: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Lenient acceptances: bad-token entries whose refusal is the server's policy (empty
/// `sub`, numeric-string `exp`, duplicate keys, size; `wrong-aud`/`wrong-iss` when the
/// scenario states no `aud`/`iss`) that the server accepted. Not violations unless the
/// scenario declares `[oracles] reject = { policy = "strict" }`; `[thresholds]
/// lenient_acceptances` can make them fatal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LenientSummary {
    /// Accepted attempts in all.
    pub total: u64,
    /// Accepted attempts by catalogue entry name (`empty-sub`...).
    #[serde(default)]
    pub by_entry: BTreeMap<String, u64>,
    /// The first ones by time.
    #[serde(default)]
    pub first: Vec<LenientAcceptance>,
}

impl LenientSummary {
    /// Counts and the first few of `all` (sorted by time).
    pub fn of(all: &[LenientAcceptance]) -> Self {
        let mut by_entry: BTreeMap<String, u64> = BTreeMap::new();
        for l in all {
            *by_entry.entry(l.entry.to_string()).or_default() += 1;
        }
        LenientSummary {
            total: all.len() as u64,
            by_entry,
            first: all.iter().take(SUMMARY_LENIENT).cloned().collect(),
        }
    }
}

/// The "event success rate" for one event type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EventRate {
    pub expected: u64,
    pub arrived: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViolationSummary {
    pub total: u64,
    pub by_oracle: BTreeMap<OracleKind, u64>,
    /// The first violations by time; the full list is in `violations.jsonl`.
    pub first: Vec<Violation>,
}

impl Summary {
    /// What part of a run this result is, in words, when it is not one whole run: `shard
    /// 1/4` (`--shard`), `4 runs merged` (`stampede merge`, `--workers`). A slice of a plan,
    /// or several processes' runs combined, reads as a whole run unless it says so.
    pub fn parts_shown(&self) -> Option<String> {
        match (self.shard, self.merged_from) {
            (_, Some(1)) => Some("1 run merged alone".into()),
            (_, Some(parts)) => Some(format!("{parts} runs merged")),
            (Some(shard), None) => Some(format!("shard {shard}")),
            (None, None) => None,
        }
    }

    /// The run's violations (of every oracle, or of `oracle`) that its verdict counts as
    /// findings: none where the verdict says they are not (an inconclusive run's, which a
    /// server going down cut; what the oracles saw of a target that could not be used, of
    /// records the scenario could not read, or past the client's own limits), all of them
    /// otherwise. What `violations` thresholds measure and `compare` weighs.
    pub fn violations_found(&self, oracle: Option<crate::model::OracleKind>) -> u64 {
        use crate::model::Verdict;
        let excused = matches!(
            self.verdict,
            Verdict::Inconclusive
                | Verdict::TargetUnusable
                | Verdict::AuthMisconfigured
                | Verdict::ClientLimited
                | Verdict::Unreadable
        );
        match (excused, oracle) {
            (true, _) => 0,
            (false, None) => self.violations.total,
            (false, Some(oracle)) => self.violations.of(oracle),
        }
    }

    /// Whether no judged threshold was breached (true when there are none, and in a run
    /// that could not exercise its target, whose thresholds are not judged:
    /// [`ThresholdResult::judged`]).
    pub fn thresholds_met(&self) -> bool {
        !self.thresholds.iter().any(ThresholdResult::breached)
    }

    /// Whether the run never got to use its target: target unusable, and not one
    /// connection accepted (a 404, a refused subprotocol, a closed port). What the oracles
    /// counted there is those refusals seen through them (every valid token's refusal a
    /// liveness failure, every bad token's 404 a rejection-hygiene one), whatever the cause,
    /// and their silence is no pass either: the reports leave the counts out and say the
    /// target was not judged.
    /// Whether the run passes as a CI gate, as its exit code 0 says: a clean verdict, no
    /// judged threshold breached, not interrupted, no task of stampede's own failed. The
    /// verdict alone reads `clean` beside a breached threshold (exit 1).
    pub fn passed(&self) -> bool {
        self.verdict == crate::model::Verdict::Clean
            && self.thresholds_met()
            && self.stopped != StopReason::Interrupted
            && self.counters.task_failures == 0
    }

    /// This summary as stampede writes it ([`Written`]).
    pub fn written(&self) -> Written<'_> {
        Written {
            summary: self,
            passed: self.passed(),
        }
    }

    /// The race planted in the built-in server the run ran against, in words: `planted bug
    /// identity-swap (window 50ms)`; `None` when there was none.
    pub fn planted_words(&self) -> Option<String> {
        self.planted_bug.as_ref().map(|bug| {
            let window = std::time::Duration::from_secs_f64(bug.window_ms.max(0.0) / 1000.0);
            format!("planted bug {} (window {window:?})", bug.name)
        })
    }

    pub fn never_used_target(&self) -> bool {
        self.verdict == crate::model::Verdict::TargetUnusable && self.counters.accepted == 0
    }

    /// Whether `other` ran the same scenario: by its content hash when both runs have one
    /// (a comment or a blank line added to the file changes its bytes, not its scenario),
    /// else by the file's bytes (a run written before the content was hashed).
    pub fn same_scenario(&self, other: &Summary) -> bool {
        match (
            self.scenario_content_hash.as_str(),
            other.scenario_content_hash.as_str(),
        ) {
            ("", _) | (_, "") => self.scenario_hash == other.scenario_hash,
            (mine, theirs) => mine == theirs,
        }
    }

    /// Whether any latency was measured: a phase other than the generator's own lag, or a
    /// named turn. A generator that fell behind in a run that timed nothing (a closed
    /// port, an overloaded machine) leaves no timing to distrust.
    pub fn timed_anything(&self) -> bool {
        let lag = crate::model::Phase::GeneratorLag.name();
        !self.turns.is_empty() || self.phases.keys().any(|name| name != lag)
    }
}

impl ViolationSummary {
    /// Violations of `oracle` (0 when none).
    pub fn of(&self, oracle: OracleKind) -> u64 {
        self.by_oracle.get(&oracle).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSummary {
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    /// True when lag p99 exceeded the limit: timings in this run are not trustworthy.
    pub fell_behind: bool,
    /// When this process itself did not run (an overloaded or throttled machine). Absent
    /// (none) in results written before it was measured.
    #[serde(default)]
    pub client_stalls: ClientStalls,
}

/// A summary as stampede writes it (`summary.json`, `--json`): every field of
/// [`Summary`], and `passed` ([`Summary::passed`]), worked out as it is written so that it
/// always agrees with them (`jq -e .passed` gates a CI job as the exit code does). Read
/// back, `passed` is left out: [`Summary::passed`] says it again.
#[derive(Debug, Serialize)]
pub struct Written<'a> {
    #[serde(flatten)]
    pub summary: &'a Summary,
    pub passed: bool,
}

/// A race planted in the built-in reference server ([`Summary::planted_bug`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedBug {
    /// Its name, as `--bug` takes it (`identity-swap`).
    pub name: String,
    /// Its window, ms (`--bug-window`).
    pub window_ms: f64,
}

/// What the summary is built from besides the findings.
pub struct RunInfo<'a> {
    pub plan: &'a Plan,
    pub target: &'a str,
    pub embedded_target: bool,
    /// The race planted in that built-in server, when one is.
    pub planted_bug: Option<PlantedBug>,
    pub started_at: String,
    pub shard: Option<Shard>,
    /// The `--source-addr` addresses ([`Summary::source_addrs`]).
    pub source_addrs: &'a [std::net::IpAddr],
}

/// What a run produced, merged over its connections, before it is summarized.
pub struct Merged {
    /// Connections the server accepted at least once ([`Summary::connections_accepted`]).
    pub connections_accepted: u64,
    pub counters: Counters,
    pub histograms: Histograms,
    pub intervals: IntervalSeries,
    /// Every kept violation, sorted by time.
    pub violations: Vec<Violation>,
    /// Every violation by oracle, kept or not.
    pub by_oracle: BTreeMap<OracleKind, u64>,
    /// Every lenient acceptance, sorted by time.
    pub lenient: Vec<LenientAcceptance>,
    pub coverage: Coverage,
    pub verdict: Verdict,
    /// See [`Summary::rate_limiting_may_explain`].
    pub rate_limiting: bool,
    /// See [`Summary::server_went_away`].
    pub went_away: bool,
    /// See [`Summary::undeclared_takeover`].
    pub undeclared_takeover: Vec<u16>,
    pub oracles: Vec<OracleKind>,
    pub hint: Option<String>,
    pub answers: Vec<Answer>,
    pub stopped: StopReason,
    pub elapsed: std::time::Duration,
    pub barriers: Vec<BarrierStats>,
    pub releases_raised: Option<bool>,
    pub probe: ProbeSummary,
    pub stalls: ClientStalls,
}

/// The merged results of a run, before formatting.
pub struct Results {
    pub summary: Summary,
    pub histograms: Histograms,
    pub violations: Vec<Violation>,
    /// The time series (`intervals.json`).
    pub intervals: IntervalSeries,
}

/// What the built-in reference server adds to the hint of a run it could not judge: it
/// speaks the golden-path protocol only, so a scenario of another protocol run without
/// `--target` reads as misconfigured against it (a graphql-transport-ws scenario's
/// `connection_init` is refused there), which says nothing of the server meant.
fn with_reference_note(
    hint: Option<String>,
    embedded: bool,
    verdict: Verdict,
    plan: &Plan,
) -> Option<String> {
    // A hint that already says what it ran against (a scenario that asks the reference
    // server for what it never sends) needs no second word of it.
    let said = hint
        .as_deref()
        .is_some_and(|h| h.contains("built-in reference server"));
    if !embedded || verdict.exercised() || said {
        return hint;
    }
    // A scenario that asks what the reference server never does is written for another
    // server: that comes first, as it is the cause (hunt's round lines show the first
    // clause alone).
    if let Some(what) = unread_by_reference(plan) {
        let note = format!(
            "the scenario is written for another server: {what}, which the built-in reference \
             server (the golden-path protocol, run as no --target was given) does not read; \
             pass --target URL of the server it is for"
        );
        // Only what the run saw: its advice (a secret to check, a calibration to try
        // alone) is for a server the scenario was written for.
        return Some(match hint.as_deref().map(what_was_seen) {
            Some(seen) if !seen.is_empty() => format!("{note}; {seen}"),
            _ => note,
        });
    }
    // Last, so that the hint's first clause stays what was seen; worded for either case:
    // a scenario meant for another server, or a golden-path one with a mistake of its own.
    let note = "this ran against the built-in reference server, which speaks the golden-path \
                protocol only: if the scenario is for another server, pass --target URL";
    Some(match hint {
        Some(hint) => format!("{hint}; {note}"),
        None => note.to_string(),
    })
}

/// What a verdict's hint says the run saw, without the advice after it: the hint up to its
/// first `; `, or to a `: ` that starts advice (`…refused (http_401 ×20): check the signing
/// secret`), whichever comes first.
fn what_was_seen(hint: &str) -> &str {
    const ADVICE: [&str; 12] = [
        "check", "raise", "lower", "give", "see", "point", "pass", "fix", "try", "declare", "look",
        "set",
    ];
    let advice_at = hint.match_indices(": ").map(|(at, _)| at).find(|&at| {
        let next = hint[at + 2..].split([' ', ',']).next().unwrap_or("");
        ADVICE.contains(&next)
    });
    let clause_end = hint.find("; ");
    let end = [advice_at, clause_end].into_iter().flatten().min();
    end.map_or(hint, |end| &hint[..end])
}

/// What `plan` asks of its server that the built-in reference server never reads
/// (docs/protocol.md, "Where the token may be"): a token in a cookie, another header or
/// the first message, no token at all, a subprotocol other than its `jwt-auth`. `None`
/// when the reference server reads everything the plan sends.
fn unread_by_reference(plan: &Plan) -> Option<String> {
    use crate::model::Placement;
    let placement = match &plan.auth.placement {
        Placement::FirstMessage { .. } => Some("its token goes in the first message".into()),
        Placement::Cookie { name } => Some(format!("its token goes in the cookie {name}")),
        Placement::Header { name, .. } if !name.eq_ignore_ascii_case("authorization") => {
            Some(format!("its token goes in the {name} header"))
        }
        Placement::Header { prefix, .. } if !prefix.trim().eq_ignore_ascii_case("bearer") => {
            Some(format!(
                "its token goes in the Authorization header after {:?}, not \"Bearer\"",
                prefix.trim()
            ))
        }
        Placement::Query { param } if param != crate::reference::TOKEN_QUERY_PARAM => {
            Some(format!("its token goes in the query parameter {param}"))
        }
        Placement::Subprotocol { prefix, .. }
            if prefix != crate::reference::TOKEN_SUBPROTOCOL_PREFIX =>
        {
            Some(format!("its token goes in a subprotocol entry {prefix}…"))
        }
        Placement::None => Some("it presents no token".into()),
        _ => None,
    };
    let offer = match &plan.auth.placement {
        Placement::Subprotocol { offer, .. } => offer.as_slice(),
        _ => &[],
    };
    let foreign = plan
        .auth
        .subprotocols
        .iter()
        .chain(plan.group_subprotocols.iter().flatten())
        .chain(offer)
        .find(|p| p.as_str() != crate::reference::JWT_SUBPROTOCOL);
    let subprotocol = foreign.map(|p| format!("it offers the subprotocol {p}"));
    match (placement, subprotocol) {
        (Some(a), Some(b)) => Some(format!("{a} and {b}")),
        (a, b) => a.or(b),
    }
}

/// Builds the summary of a run from its merged history and findings, and checks
/// `thresholds` on it.
pub fn summarize(info: &RunInfo<'_>, m: Merged, thresholds: &[Threshold]) -> Results {
    let elapsed_s = m.elapsed.as_secs_f64().max(1e-9);
    let lag = PhaseStats::of(m.histograms.get(Phase::GeneratorLag));
    let mut summary = Summary {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: info.plan.scenario.clone(),
        scenario_hash: info.plan.scenario_hash.clone(),
        scenario_content_hash: info.plan.scenario_content_hash.clone(),
        seed: info.plan.seed,
        plan_hash: info.plan.hash(),
        target: info.target.to_string(),
        embedded_target: info.embedded_target,
        planted_bug: info.planted_bug.clone(),
        started_at: info.started_at.clone(),
        elapsed_ms: m.elapsed.as_secs_f64() * 1000.0,
        duration_ms: info.plan.duration.as_secs_f64() * 1000.0,
        stopped: m.stopped,
        connections_planned: info.plan.conns.len(),
        connections_accepted: m.connections_accepted,
        received_per_sec: m.counters.messages_received as f64 / elapsed_s,
        phases: Phase::ALL
            .iter()
            .filter(|p| !m.histograms.get(**p).is_empty())
            .map(|p| (p.name().to_string(), PhaseStats::of(m.histograms.get(*p))))
            .collect(),
        turns: m
            .histograms
            .turns()
            .map(|(name, h)| (name.to_string(), PhaseStats::of(h)))
            .collect(),
        events: event_rates(&m.counters.expect.events),
        counters: m.counters,
        violations: ViolationSummary {
            total: m.by_oracle.values().sum(),
            by_oracle: m.by_oracle,
            first: m
                .violations
                .iter()
                .take(SUMMARY_VIOLATIONS)
                .cloned()
                .collect(),
        },
        lenient: LenientSummary::of(&m.lenient),
        barriers: m.barriers,
        releases_raised: m.releases_raised,
        shard: info.shard,
        merged_from: None,
        source_addrs: info.source_addrs.to_vec(),
        learned: info.plan.oracles.learned.clone(),
        // A single run's doubts are in its verdict and hint; only a merge adds warnings.
        warnings: Vec::new(),
        verdict: m.verdict,
        rate_limiting_may_explain: m.rate_limiting,
        server_went_away: m.went_away,
        undeclared_takeover: m.undeclared_takeover,
        oracles: m.oracles,
        hint: with_reference_note(m.hint, info.embedded_target, m.verdict, info.plan),
        answers: m.answers,
        thresholds: Vec::new(),
        coverage: m.coverage,
        probe: m.probe,
        generator: GeneratorSummary {
            lag_p50_ms: lag.p50_ms,
            lag_p99_ms: lag.p99_ms,
            lag_max_ms: lag.max_ms,
            fell_behind: lag.p99_ms > LAG_LIMIT_MS,
            client_stalls: m.stalls,
        },
    };
    summary.thresholds = judged_thresholds(&summary, thresholds);
    Results {
        summary,
        histograms: m.histograms,
        violations: m.violations,
        intervals: m.intervals,
    }
}

/// The event success rate of each kind some judged expectation required (a kind only cut
/// or refused expectations named is left out: it was never owed).
pub(crate) fn event_rates(
    tallies: &BTreeMap<String, crate::model::Tally>,
) -> BTreeMap<String, EventRate> {
    tallies
        .iter()
        .filter(|(_, t)| t.expected > 0)
        .map(|(k, t)| (k.clone(), event_rate(t.expected, t.arrived)))
        .collect()
}

fn event_rate(expected: u64, arrived: u64) -> EventRate {
    let rate = if expected == 0 {
        1.0
    } else {
        arrived as f64 / expected as f64
    };
    EventRate {
        expected,
        arrived,
        rate,
    }
}

#[cfg(test)]
mod reference_note_tests {
    use super::*;

    fn plan(auth: &str) -> Plan {
        let text = format!(
            "name = \"n\"\nduration = \"1s\"\n[auth]\nsecret = {{ value = \"s\" }}\n{auth}\n[[group]]\nname = \"g\"\nusers = 1\n\
             steps = [{{ send = {{ type = \"ping\" }} }}]\n"
        );
        let scenario = crate::scenario::load_str(&text, "n.toml").expect("a valid scenario");
        crate::plan::build(&scenario, 1)
    }

    /// What the reference server reads (the default header, `?token=`, `jwt.` entries
    /// beside `jwt-auth`) is no mismatch; every other place a token goes, and a
    /// subprotocol of another protocol, is named.
    #[test]
    fn what_the_reference_server_does_not_read_is_named() {
        for reads in [
            "",
            "placement = \"query\"",
            "placement = \"subprotocol\"",
            "placement = { header = \"Authorization\" }",
        ] {
            assert_eq!(unread_by_reference(&plan(reads)), None, "{reads}");
        }
        for (unread, said) in [
            (
                "placement = { cookie = \"sid\" }",
                "its token goes in the cookie sid",
            ),
            (
                "placement = { header = \"X-Token\" }",
                "its token goes in the X-Token header",
            ),
            (
                "placement = { query = \"access_token\" }",
                "query parameter access_token",
            ),
            ("placement = \"none\"", "it presents no token"),
            (
                "placement = { header = \"Authorization\", prefix = \"Token \" }",
                "after \"Token\", not \"Bearer\"",
            ),
            (
                "placement = { first_message = { type = \"auth\", token = \"{{token}}\" } }\n\
                 subprotocol = \"graphql-transport-ws\"",
                "its token goes in the first message and it offers the subprotocol \
                 graphql-transport-ws",
            ),
        ] {
            let named = unread_by_reference(&plan(unread));
            assert!(
                named.as_deref().is_some_and(|n| n.contains(said)),
                "{unread}: {named:?}"
            );
        }
    }

    /// What a run saw is kept from its hint, the advice after it left out, whichever way
    /// the hint joins them (hints as the verdicts word them).
    #[test]
    fn what_was_seen_leaves_the_advice_out() {
        for (hint, seen) in [
            (
                "every token signed with the scenario's key was refused (http_401 ×20): check \
                 the signing secret or key, aud and iss the server expects",
                "every token signed with the scenario's key was refused (http_401 ×20)",
            ),
            (
                "the server spoke on every connection it upgraded, but never with \"welcome\", \
                 the kind `[oracles] accepted` waits for (read from the field \"type\"), so \
                 the scripts closed 10 connections unaccepted and nothing was judged: check \
                 that kind against what the server sent",
                "the server spoke on every connection it upgraded, but never with \"welcome\", \
                 the kind `[oracles] accepted` waits for (read from the field \"type\"), so \
                 the scripts closed 10 connections unaccepted and nothing was judged",
            ),
            (
                "no connection got through the upgrade (http_404 ×20); try the path",
                "no connection got through the upgrade (http_404 ×20)",
            ),
            (
                "records of kinds: \"a\", \"b\" came",
                "records of kinds: \"a\", \"b\" came",
            ),
        ] {
            assert_eq!(what_was_seen(hint), seen);
        }
    }

    /// The mismatch leads an unexercised run's hint; a run that exercised the built-in
    /// server, or ran against another target, keeps its hint as it was.
    #[test]
    fn a_scenario_for_another_server_is_said_first() {
        let cookie = plan("placement = { cookie = \"sid\" }");
        let hint = Some(
            "every token signed with the scenario's key was refused (http_401 ×1); check the \
             signing secret"
                .to_string(),
        );
        let said = with_reference_note(hint.clone(), true, Verdict::AuthMisconfigured, &cookie);
        let said = said.unwrap_or_default();
        assert!(
            said.starts_with(
                "the scenario is written for another server: its token goes in the cookie sid"
            ),
            "{said}"
        );
        assert!(
            said.ends_with(
                "; every token signed with the scenario's key was refused (http_401 ×1)"
            ),
            "{said}"
        );
        assert_eq!(
            with_reference_note(hint.clone(), false, Verdict::AuthMisconfigured, &cookie),
            hint
        );
        assert_eq!(
            with_reference_note(hint.clone(), true, Verdict::Clean, &cookie),
            hint
        );
        let golden = with_reference_note(hint, true, Verdict::AuthMisconfigured, &plan(""));
        assert!(golden
            .unwrap_or_default()
            .ends_with("if the scenario is for another server, pass --target URL"));
    }
}
