//! Shared names: the vocabulary every layer speaks (phases, oracle kinds, how a run
//! stopped, its verdict), as enums with stable string forms.

use serde::{Deserialize, Serialize};

/// A measured span of the handshake timeline or the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// TCP connect.
    TcpConnect,
    /// TLS handshake (wss only).
    Tls,
    /// Upgrade request sent → 101 received.
    Upgrade,
    /// 101 → first server frame (the auth ack in most protocols).
    FirstFrame,
    /// Request sent → first correlated event.
    FirstEvent,
    /// Request → final event of the expected sequence, from the request's intended send
    /// time (the open model's schedule; the actual send otherwise): coordinated-omission free.
    Turn,
    /// Request actually sent → final event: what a naive tool reports.
    TurnRaw,
    /// How late an action started against its planned instant.
    GeneratorLag,
    /// The login request of `[auth] tokens = { login = ... }`, sent → answer read (after
    /// the older phases, so the indices of result files written before it stay as they were).
    Login,
    /// A `ping` step's Ping sent → its Pong received.
    Pong,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::TcpConnect,
        Phase::Tls,
        Phase::Upgrade,
        Phase::FirstFrame,
        Phase::FirstEvent,
        Phase::Turn,
        Phase::TurnRaw,
        Phase::GeneratorLag,
        Phase::Login,
        Phase::Pong,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::TcpConnect => "tcp_connect",
            Phase::Tls => "tls",
            Phase::Upgrade => "upgrade",
            Phase::FirstFrame => "first_frame",
            Phase::FirstEvent => "first_event",
            Phase::Turn => "turn",
            Phase::TurnRaw => "turn_raw",
            Phase::GeneratorLag => "generator_lag",
            Phase::Login => "login",
            Phase::Pong => "pong",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A set of [`Phase`]s one latency stands for: a turn whose first event also completed
/// it, and which went out when it was meant to, is one value for the first event, the turn
/// and the raw turn, buffered and filed once rather than three times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases(u16);

impl Phases {
    /// This set with `phase` in it too.
    pub fn with(self, phase: Phase) -> Phases {
        Phases(self.0 | 1 << phase.index())
    }

    pub fn contains(self, phase: Phase) -> bool {
        self.0 & 1 << phase.index() != 0
    }

    /// The set's one phase, when it holds exactly one.
    pub fn single(self) -> Option<Phase> {
        if !self.0.is_power_of_two() {
            return None;
        }
        Phase::ALL.get(self.0.trailing_zeros() as usize).copied()
    }

    /// How many phases the set holds.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// The phases in the set, in [`Phase::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Phase> {
        Phase::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl From<Phase> for Phases {
    fn from(phase: Phase) -> Phases {
        Phases::default().with(phase)
    }
}

/// Which invariant broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OracleKind {
    /// A request did not get its expected sequence, in order, in time (and no explicit error).
    Completeness,
    /// A message carried another user's identity.
    Identity,
    /// The per-connection sequence field skipped, repeated or went back.
    Ordering,
    /// More connections sharing one `jti` were served at once than allowed.
    Exclusivity,
    /// A valid token whose `jti` was not live was refused.
    Liveness,
    /// A bad token was accepted, or a refusal was not clean (1011, reset, timeout, odd status).
    RejectionHygiene,
    /// The same token got different verdicts through different placements.
    Consistency,
    /// A fresh valid connection doing the scenario's first exchange, healthy before a
    /// hunt round, failed after it: the round left the target broken (`hunt` only; no
    /// run judges it).
    TargetHealth,
}

impl OracleKind {
    pub fn name(self) -> &'static str {
        match self {
            OracleKind::Completeness => "completeness",
            OracleKind::Identity => "identity",
            OracleKind::Ordering => "ordering",
            OracleKind::Exclusivity => "exclusivity",
            OracleKind::Liveness => "liveness",
            OracleKind::RejectionHygiene => "rejection_hygiene",
            OracleKind::Consistency => "consistency",
            OracleKind::TargetHealth => "target_health",
        }
    }
}

/// Why a run stopped. Serialized as `completed`, `duration`, `interrupted`,
/// `unreachable`, `auth_refused`, `not_found` or `certificate_refused`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every connection finished its script.
    #[default]
    Completed,
    /// The hard duration was reached first.
    Duration,
    /// The caller cancelled (Ctrl-C).
    Interrupted,
    /// The target refused every TCP connection of the run's first attempts, and the run
    /// stopped early (`swarm::unreachable`): the rest of the plan never started.
    Unreachable,
    /// The target refused the upgrades of the run's first valid tokens as unauthorized
    /// and upgraded none, and the run stopped early (`swarm::unreachable`): the rest of
    /// the plan never started.
    AuthRefused,
    /// The target answered the run's first upgrades 404 Not Found or 410 Gone and upgraded
    /// none, and the run stopped early (`swarm::unreachable`): the rest of the plan never
    /// started.
    NotFound,
    /// The run's first TLS handshakes all refused the server's certificate and no upgrade
    /// got through, and the run stopped early (`swarm::unreachable`): the rest of the plan
    /// never started.
    CertificateRefused,
    /// The target took the TCP connections of the run's first valid tokens but answered
    /// none of their upgrades within `handshake_timeout`, nor any other upgrade, and the
    /// run stopped early (`swarm::unreachable`): the rest of the plan never started.
    UpgradeUnanswered,
    /// The target upgraded the run's first valid tokens' connections and then closed each
    /// before accepting it for breaking its protocol (a Close 1002, 1003 or 1007),
    /// accepting none, and the run stopped early (`swarm::unreachable`): the rest of the
    /// plan never started.
    ClosedUnaccepted,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Completed => "completed",
            StopReason::Duration => "duration",
            StopReason::Interrupted => "interrupted",
            StopReason::Unreachable => "unreachable",
            StopReason::AuthRefused => "auth_refused",
            StopReason::NotFound => "not_found",
            StopReason::CertificateRefused => "certificate_refused",
            StopReason::UpgradeUnanswered => "upgrade_unanswered",
            StopReason::ClosedUnaccepted => "closed_unaccepted",
        }
    }
}

/// What a run's findings add up to; decided once, in `oracle::verdict::judge`, and read by
/// every output (console, JSON, JUnit, HTML, `compare`, `hunt`) and by the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The target was exercised and no oracle broke.
    #[default]
    Clean,
    /// At least one oracle broke.
    Violations,
    /// No violation, but the race the scenario aims at never happened: not a pass.
    Inconclusive,
    /// No connection got through the upgrade, for reasons other than a clean auth
    /// refusal: the run exercised nothing.
    TargetUnusable,
    /// Every valid token was refused with an auth status while nothing else failed: the
    /// secret, key, `aud` or `iss` do not match the server's.
    AuthMisconfigured,
    /// The plan did not finish (cut by the duration, or interrupted): what did not run
    /// proves nothing.
    Incomplete,
    /// Every failure was the client's own limit (file descriptors, ephemeral ports):
    /// never charged to the target.
    ClientLimited,
    /// The server answered, but not one record had a kind the scenario reads (none was
    /// JSON, or none carried `type_field` or passed a kinds rule), and every violation was
    /// an unmet expectation: the scenario does not read this protocol (a missing
    /// `record_separator`, a binary protocol, kinds in another field), so those
    /// violations are the misreading, not the server's. Also when the server sent nothing
    /// at all after the upgrade and closed nothing, on any connection, and every violation
    /// was an unmet expectation: a protocol step the script lacks, not a race. And when
    /// no record had a kind the scenario reads and nothing broke because nothing was
    /// checked (no expectation met, no identity seen): a run blind to what the server
    /// said is no clean run.
    Unreadable,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Violations => "violations",
            Verdict::Inconclusive => "inconclusive",
            Verdict::TargetUnusable => "target_unusable",
            Verdict::AuthMisconfigured => "auth_misconfigured",
            Verdict::Incomplete => "incomplete",
            Verdict::ClientLimited => "client_limited",
            Verdict::Unreadable => "unreadable",
        }
    }

    /// How bad a verdict is when runs are combined (seeds, shards): 0 is worst. A run that
    /// could not judge the target first, then violations, incomplete, inconclusive, clean.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::TargetUnusable => 0,
            Verdict::AuthMisconfigured => 1,
            Verdict::ClientLimited => 2,
            Verdict::Unreadable => 3,
            Verdict::Violations => 4,
            Verdict::Incomplete => 5,
            Verdict::Inconclusive => 6,
            Verdict::Clean => 7,
        }
    }

    /// The worst of several verdicts (`None` for none).
    pub fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
        verdicts.into_iter().min_by_key(|v| v.severity())
    }

    /// Whether the run can be trusted to have exercised the target: a finding in a run
    /// that did not is no race, and its silence is no pass.
    pub fn exercised(self) -> bool {
        !matches!(
            self,
            Verdict::TargetUnusable
                | Verdict::AuthMisconfigured
                | Verdict::ClientLimited
                | Verdict::Unreadable
        )
    }
}

macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}

display_by_name!(Phase, OracleKind, StopReason, Verdict);
