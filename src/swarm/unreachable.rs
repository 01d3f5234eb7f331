//! Failing fast on a target that is not there, or that takes none of the run's tokens.
//!
//! A closed port (a wrong URL, a server not started) refuses every TCP connection at
//! once, and nothing in the rest of the plan can be judged: a run under a long ramp would
//! otherwise wait out the whole ramp before saying so. Once the first
//! [`REFUSALS`] attempts were all refused at TCP and none connected, with more planned,
//! the run stops; its verdict is the target's (unusable) and says it stopped early. A
//! target that took one TCP connection first (a server that went down mid-run) is never
//! stopped this way: its later refusals are findings of the run.
//!
//! A wrong secret (or issuer, audience, key) is the same at the upgrade: the server
//! refuses every valid token's upgrade as unauthorized (HTTP 401 or 403, or a status
//! `[oracles] reject.http` declares). Once the first [`REFUSALS`] valid tokens' upgrades
//! were all refused so, and none got its 101, with more valid tokens' connections planned,
//! the run stops; its verdict is the scenario's (auth misconfigured). A server that
//! upgraded one valid token's connection first is never stopped this way; nor is one that
//! refuses after the upgrade (a Close 1008 or 4401), whose refusals are judged with the
//! rest of the run (an auth backend still starting refuses the first connections, then
//! takes the rest: a finding). Only refusals no correct server makes count ([`auth_counted`]): a
//! connection's first attempt, with a valid token no other connection presents (a
//! duplicate's refusal is a server's policy, a reconnect's may be its cleanup lagging);
//! and only in a plan whose such connections all make their upgrades the same way (a
//! server that reads the header but not the query, or refuses one group's tenant header,
//! refuses that group for it, not for the secret), with no header filled per connection
//! (a room the user may not enter is refused 403), subjects that do not name their group
//! when several connect (a tenant that is gone), and arrivals over a second or more (a
//! burst ends as soon anyway, and stopping it would only cut what is in flight).
//!
//! A wrong path is the same once more: an HTTP server answers every upgrade 404 Not Found
//! or 410 Gone. Once the first [`REFUSALS`] connections' first attempts were all answered
//! so and none got its 101, with more planned, the run stops; its verdict is the
//! target's (unusable, with the path to check). Only valid tokens' connections count (a
//! forged token's refusal may be declared as a 404), and only where nothing tells one
//! connection's request from another's but its token ([`path_counted`]): one URL, not
//! filled per connection (it may name a room that is not there for some), the token not
//! in it, the same headers (none filled per connection: one group's tenant may be gone)
//! and subprotocols, no subject naming its group when several connect, arrivals over a
//! second or more. A server that upgraded one connection first, or calibration's just
//! before the load, is never stopped this way.
//!
//! A server that takes TCP connections but answers no upgrade (a service of another
//! protocol on that port, a server hung before its HTTP layer) is the same once more: every
//! connection waits out its `handshake_timeout`, the whole ramp long. Once the first
//! [`REFUSALS`] valid tokens' first upgrades all went unanswered so, and the server
//! answered no upgrade at all (no 101, no HTTP status), with more valid tokens' connections
//! planned and arrivals over a second or more (a burst's other upgrades are still in
//! flight), the run stops; its verdict is the target's (unusable). A server that answered
//! one upgrade first, even with a refusal, is never stopped this way: its timeouts are
//! findings of the run (a server slow under load).
//!
//! A server that upgrades and then closes each connection before accepting it for breaking
//! its protocol (1002, 1003, 1007: a script of another protocol, a handshake it does not
//! complete) is the same once more. Once the first [`REFUSALS`] valid tokens' first
//! attempts were all closed so, over a second or more from the first such close (ten in a
//! moment could beat a slower acceptance already under way), and the server had accepted
//! no connection (nor calibration's just before the load), with more planned, the run
//! stops; its verdict is the target's (unusable). The connections that count are those a
//! wrong secret's count takes ([`auth_counted`]), when they all run one script
//! ([`one_script`]: one group's broken script says nothing of another's). An auth
//! refusal, a server fault (1011), a shed (1013) or a normal closure never counts.
//!
//! A certificate the client refuses (a CA it was not given, another host's name, out of
//! date) is refused for every attempt at that host alike, whatever the server's load:
//! once the first [`REFUSALS`] TLS handshakes all refused it, none took it and no upgrade
//! got its 101, with more planned and arrivals over a second or more (a burst's other
//! handshakes are still in flight), the run stops too; its verdict is the target's
//! (unusable, with what to do about that certificate).

use crate::model::{ConnPlan, EnvText, Placement, Plan, StopReason};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many failures of one kind, with nothing through first, stop the run.
pub const REFUSALS: u64 = 10;

/// How long the counted connections' arrivals must spread over for a failure other than a
/// closed port to stop the run: a burst ends as soon anyway, and stopping it would only
/// cut what is in flight.
const SPREAD: Duration = Duration::from_secs(1);

/// By connection index, whether its first attempt's refusal as unauthorized counts
/// toward stopping the run: its token is valid (not forged) and presented by no other
/// connection, or for no other subject. All `false` when those connections' requests may
/// differ by more than their tokens ([`only_tokens_differ`]: a server may refuse one
/// group's tenant header, not the secret), or they start within [`SPREAD`].
fn auth_counted(plan: &Plan, templated: bool) -> Vec<bool> {
    let shared = plan.sessions_shared();
    let counted: Vec<bool> = plan
        .conns
        .iter()
        .map(|c| valid(plan, c) && !shared.get(c.token as usize).copied().unwrap_or(true))
        .collect();
    let conns = plan.conns.iter().zip(&counted).filter(|(_, c)| **c);
    let conns = conns.map(|(c, _)| c);
    if !only_tokens_differ(plan, templated, conns.clone()) || !spread(conns) {
        return vec![false; counted.len()];
    }
    counted
}

/// Whether the connections [`auth_counted`] counts (`auth`) all run one script: only then
/// do their first attempts, closed by the server after the upgrade before acceptance
/// ([`closes_unusably`]), count toward stopping the run (a group whose script breaks the
/// protocol says nothing of another's).
fn one_script(plan: &Plan, auth: &[bool]) -> bool {
    let mut scripts = plan
        .conns
        .iter()
        .zip(auth)
        .filter(|(_, counted)| **counted)
        .map(|(c, _)| c.is_scripted().then(|| plan.scripts.get(c.group as usize)));
    let first = scripts.next().flatten();
    first.is_some() && scripts.all(|s| s == first)
}

/// Whether a server Close with `code` that ended an attempt after its upgrade, before
/// acceptance, says the scenario's script does not speak the server's protocol: 1002
/// protocol error, 1003 unsupported data, 1007 inconsistent data. An auth refusal does not
/// (a server refusing valid tokens for a while is a finding), nor does a server fault
/// (1011), going away (1001), load shed (1013) or a normal closure.
pub fn closes_unusably(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007)
}

/// By connection index, whether its first attempt answered 404 or 410 counts toward
/// stopping the run as a wrong path: its token is valid. All `false` unless nothing but
/// the token tells one connection's request from another's ([`only_tokens_differ`]) and
/// the token travels outside the URL (not in the query: a server may not find that
/// session), and the connections arrive over [`SPREAD`] or more.
fn path_counted(plan: &Plan, templated: bool) -> Vec<bool> {
    let token_in_url = plan
        .conns
        .iter()
        .any(|c| matches!(plan.placement_of(c), Placement::Query { .. }));
    let conns = plan.conns.iter();
    if token_in_url || !only_tokens_differ(plan, templated, conns.clone()) || !spread(conns) {
        return vec![false; plan.conns.len()];
    }
    plan.conns.iter().map(|c| valid(plan, c)).collect()
}

/// By connection index, whether its first upgrade left unanswered within
/// `handshake_timeout` counts toward stopping the run: its token is valid (a forged one's
/// upgrade a server may hold on purpose), and the plan's arrivals spread over [`SPREAD`]
/// (a burst's other upgrades are still in flight when the first ones time out). All
/// `false` otherwise.
fn unanswered_counted(plan: &Plan) -> Vec<bool> {
    let spread_out = spread(plan.conns.iter());
    plan.conns
        .iter()
        .map(|c| spread_out && valid(plan, c))
        .collect()
}

/// Whether `conns`' upgrade requests differ by nothing but their tokens in a way a correct
/// server refuses some of them for: one URL, not filled per connection (`templated`: a room
/// that is not there for some); no header filled per connection (`[auth]`'s or a group's:
/// a room the user may not enter); one way of making the upgrade (the token's placement,
/// the group's headers and subprotocols: one group's tenant header may be gone); no
/// subject naming its group when more than one group connects (a tenant that is gone).
fn only_tokens_differ<'p>(
    plan: &Plan,
    templated: bool,
    mut conns: impl Iterator<Item = &'p ConnPlan> + Clone,
) -> bool {
    let filled =
        |headers: &[(String, EnvText)]| headers.iter().any(|(_, v)| v.as_str().contains("{{"));
    let way = |c| {
        (
            plan.placement_of(c),
            plan.headers_of(c),
            plan.subprotocols_of(c),
        )
    };
    let Some(first) = conns.clone().next() else {
        return true;
    };
    let several_groups = conns.clone().any(|c| c.group != first.group);
    !templated
        && !filled(&plan.auth.headers)
        && conns
            .clone()
            .all(|c| !filled(plan.headers_of(c)) && way(c) == way(first))
        && (!several_groups || !conns.any(|c| names_group(plan, c)))
}

/// Whether connection `c`'s token subject holds its group's name (`sub =
/// "{{group}}-{{user}}"`): a server may read a tenant there.
fn names_group(plan: &Plan, c: &ConnPlan) -> bool {
    let group = plan.groups.get(c.group as usize).map_or("", String::as_str);
    let sub = plan
        .tokens
        .get(c.token as usize)
        .map_or("", |t| t.sub.as_str());
    !group.is_empty() && sub.contains(group)
}

/// Whether `conns` start over [`SPREAD`] or more (`false` for none).
fn spread<'p>(conns: impl Iterator<Item = &'p ConnPlan> + Clone) -> bool {
    let starts = conns.map(|c| c.start);
    match (starts.clone().min(), starts.max()) {
        (Some(earliest), Some(latest)) => latest.saturating_sub(earliest) >= SPREAD,
        _ => false,
    }
}

/// Whether connection `c` presents a valid (not forged) token.
fn valid(plan: &Plan, c: &ConnPlan) -> bool {
    plan.tokens
        .get(c.token as usize)
        .is_some_and(|t| t.forge.is_none())
}

/// A count of one kind of failure that stops the run once it reaches [`REFUSALS`] while
/// nothing has disproved what it says.
#[derive(Debug, Default)]
struct Tripwire {
    count: AtomicU64,
    fired: AtomicBool,
}

impl Tripwire {
    /// Counts one failure; cancels `stop` the first time the count reaches [`REFUSALS`]
    /// while `armed` holds (more planned, nothing got through).
    fn count(&self, armed: bool, stop: &CancellationToken) {
        let n = self.count.fetch_add(1, Relaxed) + 1;
        if n >= REFUSALS && armed && !self.fired.swap(true, Relaxed) {
            stop.cancel();
        }
    }

    /// The count when it stopped the run; `None` when it did not.
    fn fired(&self) -> Option<u64> {
        self.fired.load(Relaxed).then(|| self.count.load(Relaxed))
    }
}

/// Something that happened at least once in the run (set by the first of many tasks;
/// read with no ordering needed: a late reader only stops the run a little later).
#[derive(Debug, Default)]
struct Latch(AtomicBool);

impl Latch {
    fn set(&self) {
        // A load first: once set, the line stays shared between the cores, not written.
        if !self.0.load(Relaxed) {
            self.0.store(true, Relaxed);
        }
    }

    fn is_set(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// The run's counts of failures that say the target cannot be used as configured (a
/// closed port, a wrong secret, a wrong path, a refused certificate); cancels the run's
/// token once one of them reaches [`REFUSALS`] before anything got through.
#[derive(Debug)]
pub struct FailFast {
    /// Connections in the plan: a plan of no more than [`REFUSALS`] is never stopped (it
    /// ends as soon anyway).
    planned: u64,
    /// TCP refusals before any TCP connection was made.
    refused: Tripwire,
    connected: Latch,
    /// Valid tokens' upgrades refused as unauthorized before any valid token's upgrade got
    /// its 101: which connections' first attempts count ([`auth_counted`]), and how many
    /// do.
    counted: Vec<bool>,
    planned_valid: u64,
    auth_refused: Tripwire,
    upgraded_valid: Latch,
    /// First attempts answered 404 or 410 before any upgrade got its 101: which
    /// connections' count ([`path_counted`]), and how many do.
    path_counted: Vec<bool>,
    planned_path: u64,
    not_found: Tripwire,
    upgraded: Latch,
    /// TLS handshakes that refused the server's certificate before any took it, when the
    /// plan's arrivals spread over [`SPREAD`] or more ([`spread_out`]: a burst's other
    /// handshakes are in flight when the first refusals come).
    certificate_counted: bool,
    certificates_refused: Tripwire,
    certificate_taken: Latch,
    /// Valid tokens' first upgrades left unanswered within `handshake_timeout` before the
    /// server answered any upgrade (a 101 or an HTTP status): which connections' count
    /// ([`unanswered_counted`]) and how many do, and whether one was answered.
    unanswered_counted: Vec<bool>,
    planned_unanswered: u64,
    upgrades_unanswered: Tripwire,
    answered: Latch,
    /// Valid tokens' first attempts the server closed after the upgrade before accepting
    /// them for breaking its protocol, before it accepted any connection: those `counted`
    /// takes count, when they run one script ([`one_script`]).
    closed_counted: bool,
    closed_unaccepted: Tripwire,
    /// When the first counted connection was closed so.
    first_closed: std::sync::OnceLock<std::time::Instant>,
    accepted: Latch,
    stop: CancellationToken,
}

impl FailFast {
    /// For a plan of `planned` connections whose run `stop` cancels; `counted`: by
    /// connection index, whether its first attempt's refusal as unauthorized counts
    /// ([`auth_counted`]); `path_counted`: by connection index, whether its first
    /// attempt's answer of 404 or 410 counts ([`path_counted`]); `certificate_counted`:
    /// whether refused certificates count ([`spread_out`]).
    #[cfg(test)]
    fn new(
        planned: usize,
        counted: Vec<bool>,
        path_counted: Vec<bool>,
        certificate_counted: bool,
        stop: CancellationToken,
    ) -> FailFast {
        // Where arrivals spread out (as for certificates), every valid token's first
        // upgrade counts when left unanswered.
        let unanswered_counted = vec![certificate_counted; planned];
        let counts = (counted, path_counted, unanswered_counted);
        FailFast::counting(planned, counts, certificate_counted, stop)
    }

    /// [`FailFast::new`], with which connections' unanswered first upgrades count given:
    /// `counts` are, by connection index, whether a refusal as unauthorized, an answer of
    /// 404 or 410, and an upgrade left unanswered count ([`auth_counted`],
    /// [`path_counted`], [`unanswered_counted`]).
    fn counting(
        planned: usize,
        (counted, path_counted, unanswered_counted): (Vec<bool>, Vec<bool>, Vec<bool>),
        certificate_counted: bool,
        stop: CancellationToken,
    ) -> FailFast {
        let planned_valid = counted.iter().filter(|c| **c).count() as u64;
        let planned_path = path_counted.iter().filter(|c| **c).count() as u64;
        let planned_unanswered = unanswered_counted.iter().filter(|c| **c).count() as u64;
        FailFast {
            closed_counted: true,
            closed_unaccepted: Tripwire::default(),
            first_closed: std::sync::OnceLock::new(),
            accepted: Latch::default(),
            planned: planned as u64,
            refused: Tripwire::default(),
            connected: Latch::default(),
            counted,
            planned_valid,
            auth_refused: Tripwire::default(),
            upgraded_valid: Latch::default(),
            path_counted,
            planned_path,
            not_found: Tripwire::default(),
            upgraded: Latch::default(),
            certificate_counted,
            certificates_refused: Tripwire::default(),
            certificate_taken: Latch::default(),
            unanswered_counted,
            planned_unanswered,
            upgrades_unanswered: Tripwire::default(),
            answered: Latch::default(),
            stop,
        }
    }

    /// The fail-fast of `plan`'s run, which `stop` cancels: which connections' failures
    /// count ([`auth_counted`], [`path_counted`]; `templated`: the URL is filled per
    /// connection), and refused certificates only when arrivals spread over [`SPREAD`].
    pub fn for_plan(plan: &Plan, templated: bool, stop: CancellationToken) -> FailFast {
        let counts = (
            auth_counted(plan, templated),
            path_counted(plan, templated),
            unanswered_counted(plan),
        );
        let alike = one_script(plan, &counts.0);
        let mut fail =
            FailFast::counting(plan.conns.len(), counts, spread(plan.conns.iter()), stop);
        fail.closed_counted = alike;
        fail
    }

    /// Why the run stopped early and after how many failures, when a count stopped it
    /// (the first that did, in the order a dial meets them: TCP, TLS, the upgrade).
    pub fn stopped_early(&self) -> Option<(StopReason, u64)> {
        [
            (StopReason::Unreachable, &self.refused),
            (StopReason::CertificateRefused, &self.certificates_refused),
            (StopReason::AuthRefused, &self.auth_refused),
            (StopReason::NotFound, &self.not_found),
            (StopReason::UpgradeUnanswered, &self.upgrades_unanswered),
            (StopReason::ClosedUnaccepted, &self.closed_unaccepted),
        ]
        .into_iter()
        .find_map(|(why, count)| count.fired().map(|n| (why, n)))
    }

    /// A valid token's upgrade got its 101 (whatever came after it): the server takes the
    /// run's tokens, or judges them after the upgrade.
    pub fn upgraded_valid(&self) {
        self.upgraded_valid.set();
    }

    /// The first attempt of connection `conn`, a valid token's, was refused as
    /// unauthorized at the upgrade: stops the run when that makes [`REFUSALS`] of the
    /// connections that count with no valid token upgraded and more of them planned.
    pub fn auth_refused(&self, conn: usize) {
        if self.counted.get(conn).copied().unwrap_or(false) {
            let armed = self.planned_valid > REFUSALS && !self.upgraded_valid.is_set();
            self.auth_refused.count(armed, &self.stop);
        }
    }

    /// An upgrade got its 101 (whatever came after it; a calibration connection's just
    /// before the load too): the path takes WebSockets, and the client took the server's
    /// certificate.
    pub fn upgraded(&self) {
        self.upgraded.set();
    }

    /// The first attempt of connection `conn` was answered 404 Not Found or 410 Gone:
    /// stops the run when that makes [`REFUSALS`] of the connections that count, with none
    /// upgraded and more of them planned.
    pub fn not_found(&self, conn: usize) {
        if self.path_counted.get(conn).copied().unwrap_or(false) {
            let armed = self.planned_path > REFUSALS && !self.upgraded.is_set();
            self.not_found.count(armed, &self.stop);
        }
    }

    /// A TLS handshake went through: the client takes the server's certificate.
    pub fn certificate_taken(&self) {
        self.certificate_taken.set();
    }

    /// A TLS handshake refused the server's certificate: stops the run when that makes
    /// [`REFUSALS`] with none taken, no upgrade and more connections planned.
    pub fn certificate_refused(&self) {
        if self.certificate_counted {
            let armed = self.planned > REFUSALS
                && !self.certificate_taken.is_set()
                && !self.upgraded.is_set();
            self.certificates_refused.count(armed, &self.stop);
        }
    }

    /// An upgrade was answered with an HTTP status (a refusal, a redirect, a page): the
    /// server's HTTP layer is there, so its timeouts are its load's, not a dead end.
    pub fn upgrade_answered(&self) {
        self.answered.set();
    }

    /// The first attempt of connection `conn` took its TCP connection but got no answer to
    /// its upgrade within `handshake_timeout`: stops the run when that makes [`REFUSALS`] of
    /// the connections that count, with no upgrade answered and more of them planned.
    pub fn upgrade_unanswered(&self, conn: usize) {
        if self.unanswered_counted.get(conn).copied().unwrap_or(false) {
            let armed = self.planned_unanswered > REFUSALS
                && !self.upgraded.is_set()
                && !self.answered.is_set();
            self.upgrades_unanswered.count(armed, &self.stop);
        }
    }

    /// A connection was accepted (by the 101, its first frame or the message `[oracles]
    /// accepted` names; a calibration connection's just before the load too): the server
    /// takes the run's tokens and its protocol as the scenario speaks it.
    pub fn accepted(&self) {
        self.accepted.set();
    }

    /// The first attempt of connection `conn`, a valid token's, was closed by the server
    /// after its upgrade before it was accepted, for breaking the protocol
    /// ([`closes_unusably`]): stops the run when that makes [`REFUSALS`] of the connections
    /// that count, over [`SPREAD`] or more from the first such close, with none accepted
    /// and more of them planned. (Ten closes within a moment could beat a slower
    /// acceptance already under way.)
    pub fn closed_unaccepted(&self, conn: usize) {
        self.closed_unaccepted_at(conn, std::time::Instant::now());
    }

    /// [`FailFast::closed_unaccepted`] at `now`.
    fn closed_unaccepted_at(&self, conn: usize, now: std::time::Instant) {
        if self.closed_counted && self.counted.get(conn).copied().unwrap_or(false) {
            let first = *self.first_closed.get_or_init(|| now);
            let armed = self.planned_valid > REFUSALS
                && !self.accepted.is_set()
                && now.saturating_duration_since(first) >= SPREAD;
            self.closed_unaccepted.count(armed, &self.stop);
        }
    }

    /// A TCP connection was made (whatever came after it): the target is there.
    pub fn connected(&self) {
        self.connected.set();
    }

    /// A TCP connect was refused (ECONNREFUSED): stops the run when that makes
    /// [`REFUSALS`] with none connected and more connections planned.
    pub fn refused(&self) {
        let armed = self.planned > REFUSALS && !self.connected.is_set();
        self.refused.count(armed, &self.stop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_before_any_connection_stop_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let fail = FailFast::new(200, vec![true; 200], vec![true; 200], true, stop.clone());
        for _ in 0..REFUSALS - 1 {
            fail.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(fail.stopped_early(), None);
        fail.refused();
        assert!(stop.is_cancelled());
        assert_eq!(
            fail.stopped_early(),
            Some((StopReason::Unreachable, REFUSALS))
        );

        let stop = CancellationToken::new();
        let reached = FailFast::new(200, vec![true; 200], vec![true; 200], true, stop.clone());
        reached.connected();
        for _ in 0..3 * REFUSALS {
            reached.refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(reached.stopped_early(), None);

        // A plan no larger than the threshold runs to its end.
        let stop = CancellationToken::new();
        let small = FailFast::new(
            REFUSALS as usize,
            vec![true; REFUSALS as usize],
            vec![true; REFUSALS as usize],
            true,
            stop.clone(),
        );
        for _ in 0..REFUSALS {
            small.refused();
        }
        assert!(!stop.is_cancelled());
    }

    /// Unanswered first upgrades of counted connections stop the run at [`REFUSALS`] while
    /// no upgrade was answered; an HTTP answer (even a refusal) or a 101 first disarms it,
    /// and connections that do not count (forged tokens, a burst) are never counted.
    #[test]
    fn upgrades_left_unanswered_stop_the_run_until_one_is_answered() {
        let stop = CancellationToken::new();
        let mut counted = vec![true; 40];
        counted[0] = false;
        let fail = FailFast::counting(
            40,
            (vec![false; 40], vec![false; 40], counted),
            true,
            stop.clone(),
        );
        fail.connected();
        fail.upgrade_unanswered(0);
        for conn in 1..REFUSALS as usize {
            fail.upgrade_unanswered(conn);
        }
        assert!(
            !stop.is_cancelled(),
            "the uncounted one is not among the ten"
        );
        fail.upgrade_unanswered(REFUSALS as usize);
        assert!(stop.is_cancelled());
        assert_eq!(
            fail.stopped_early(),
            Some((StopReason::UpgradeUnanswered, REFUSALS))
        );
        for answer in [FailFast::upgrade_answered, FailFast::upgraded] {
            let stop = CancellationToken::new();
            let answered = FailFast::counting(
                40,
                (vec![false; 40], vec![false; 40], vec![true; 40]),
                true,
                stop.clone(),
            );
            answer(&answered);
            for conn in 0..3 * REFUSALS as usize {
                answered.upgrade_unanswered(conn);
            }
            assert!(!stop.is_cancelled());
            assert_eq!(answered.stopped_early(), None);
        }
        // Which count: valid tokens' connections of a plan whose arrivals spread out.
        let ramp = "arrival = { ramp = \"5s\" }";
        assert!(unanswered_counted(&plan_of(&group("g", ramp)))
            .iter()
            .all(|c| *c));
        assert!(unanswered_counted(&plan_of(&group("g", "")))
            .iter()
            .all(|c| !*c));
        let forged = plan_of(&group("g", &format!("{ramp}\nforge = \"catalogue\"")));
        assert!(unanswered_counted(&forged).iter().all(|c| !*c));
    }

    /// Valid tokens' first attempts closed before acceptance for breaking the protocol stop
    /// the run at [`REFUSALS`], once they span [`SPREAD`], while no connection was
    /// accepted; an acceptance first disarms it; only counted connections count, and they
    /// count only where they run one script.
    #[test]
    fn connections_closed_before_acceptance_stop_the_run_until_one_is_accepted() {
        let ramp = "arrival = { ramp = \"5s\" }";
        let plan = plan_of(&group("g", ramp));
        let stop = CancellationToken::new();
        let fail = FailFast::for_plan(&plan, false, stop.clone());
        fail.upgraded();
        fail.upgraded_valid();
        let t0 = std::time::Instant::now();
        for conn in 0..REFUSALS as usize + 5 {
            fail.closed_unaccepted_at(conn, t0 + Duration::from_millis(50 * conn as u64));
        }
        assert!(
            !stop.is_cancelled(),
            "fifteen closes within 0.7 s stop nothing"
        );
        fail.closed_unaccepted_at(16, t0 + SPREAD);
        assert!(stop.is_cancelled(), "a 101 alone does not disarm it");
        assert_eq!(
            fail.stopped_early(),
            Some((StopReason::ClosedUnaccepted, REFUSALS + 6))
        );
        let stop = CancellationToken::new();
        let took_one = FailFast::for_plan(&plan, false, stop.clone());
        took_one.accepted();
        for conn in 0..20 {
            took_one.closed_unaccepted_at(conn, t0 + Duration::from_millis(100 * conn as u64));
        }
        assert!(!stop.is_cancelled());
        assert_eq!(took_one.stopped_early(), None);
        // Two groups of two scripts: one's broken script says nothing of the other's.
        let two = plan_of(&format!(
            "{}[[group]]\nname = \"h\"\nusers = 20\n{ramp}\nsteps = [{{ think = \"1s\" }}]\n",
            group("g", ramp)
        ));
        assert!(!one_script(&two, &[true; 40]));
        let same = plan_of(&format!("{}{}", group("g", ramp), group("h", ramp)));
        assert!(one_script(&same, &[true; 40]));
        let mut some = [false; 40];
        some[3] = true;
        assert!(one_script(&two, &some), "one group's connections");
        // Which closes say so: a protocol error, not an auth refusal nor a server fault.
        for code in [1002, 1003, 1007] {
            assert!(closes_unusably(code), "{code}");
        }
        for code in [1000, 1001, 1008, 1011, 1013, 4000, 4401, 4403] {
            assert!(!closes_unusably(code), "{code}");
        }
    }

    fn plan_of(groups: &str) -> Plan {
        plan_with("", groups)
    }

    /// A plan of `groups` with `auth` lines added to its `[auth]` table.
    fn plan_with(auth: &str, groups: &str) -> Plan {
        let text = format!(
            "name = \"f\"\nduration = \"30s\"\n[auth]\nsecret = {{ value = \"s\" }}\n{auth}\n{groups}"
        );
        let scenario = crate::scenario::load_str(&text, "f.toml").expect("loads");
        crate::plan::build(&scenario, 1)
    }

    fn group(name: &str, extra: &str) -> String {
        format!("[[group]]\nname = \"{name}\"\nusers = 20\n{extra}\nsteps = [{{ close = 1000 }}]\n")
    }

    /// Which refusals count toward a wrong secret's early stop: first attempts of valid,
    /// unshared tokens carried one way, arriving over a second or more.
    #[test]
    fn only_refusals_no_correct_server_makes_count() {
        let ramp = "arrival = { ramp = \"5s\" }";
        let counted = auth_counted(&plan_of(&group("g", ramp)), false);
        assert!(counted.iter().all(|c| *c) && counted.len() == 20);
        // A URL filled per connection: groups may go to different places.
        let templated = auth_counted(&plan_of(&group("g", ramp)), true);
        assert!(templated.iter().all(|c| !*c));
        // A burst ends as soon anyway.
        let burst = auth_counted(&plan_of(&group("g", "arrival = \"burst\"")), false);
        assert!(burst.iter().all(|c| !*c));
        // Shared tokens: refusing a duplicate is a server's policy.
        let shared = format!("{ramp}\nconnections_per_user = 2");
        assert!(auth_counted(&plan_of(&group("g", &shared)), false)
            .iter()
            .all(|c| !*c));
        // Two placements: a server may read one and not the other.
        let header = format!("{ramp}\nplacement = \"header\"");
        let query = format!("{ramp}\nplacement = \"query\"");
        let two = plan_of(&(group("h", &header) + &group("q", &query)));
        assert!(auth_counted(&two, false).iter().all(|c| !*c));
        // One group's own header: a server may refuse its tenant, not the secret. Distinct
        // subjects per group, so that the tokens are not shared.
        let sub = "sub = \"{{group}}-{{user}}\"";
        let tenant = format!("{ramp}\nheaders = {{ X-Tenant = \"evilcorp\" }}");
        let both = plan_with(sub, &(group("tenant", &tenant) + &group("legit", ramp)));
        assert!(auth_counted(&both, false).iter().all(|c| !*c));
        // Subjects that name their group: a server may read a tenant there and refuse a
        // tenant that is gone, whatever the secret.
        let alike = plan_with(sub, &(group("a", ramp) + &group("b", ramp)));
        assert!(auth_counted(&alike, false).iter().all(|c| !*c));
        // A header filled per connection: a room the user may not enter is refused 403.
        let room = format!("{ramp}\nheaders = {{ X-Room = \"r{{{{conn}}}}\" }}");
        assert!(auth_counted(&plan_of(&group("g", &room)), false)
            .iter()
            .all(|c| !*c));
        let auth_room = plan_with("headers = { X-Room = \"r{{conn}}\" }", &group("g", ramp));
        assert!(auth_counted(&auth_room, false).iter().all(|c| !*c));
        // Forged tokens never count; the valid ones beside them do.
        let forged = format!("{ramp}\nforge = \"catalogue\"");
        let mixed = plan_of(&(group("valid", ramp) + &group("forged", &forged)));
        let counted = auth_counted(&mixed, false);
        for (c, counts) in mixed.conns.iter().zip(&counted) {
            let forge = mixed.tokens[c.token as usize].forge.is_some();
            assert_eq!(*counts, !forge, "conn {}", c.id);
        }
        assert!(counted.iter().any(|c| *c));
    }

    #[test]
    fn valid_tokens_refused_before_any_upgrade_stop_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let mut counted = vec![true; 200];
        counted.extend([false; 100]);
        let fail = FailFast::new(300, counted.clone(), vec![true; 300], true, stop.clone());
        // Connections that do not count (forged or shared tokens) stop nothing.
        for conn in 200..300 {
            fail.auth_refused(conn);
        }
        for conn in 0..REFUSALS as usize - 1 {
            fail.auth_refused(conn);
        }
        assert!(!stop.is_cancelled());
        fail.auth_refused(100);
        assert!(stop.is_cancelled());
        let why = Some((StopReason::AuthRefused, REFUSALS));
        assert_eq!(fail.stopped_early(), why, "not for the TCP reason");

        let stop = CancellationToken::new();
        let took_one = FailFast::new(300, counted, vec![true; 300], true, stop.clone());
        took_one.upgraded_valid();
        for conn in 0..3 * REFUSALS as usize {
            took_one.auth_refused(conn);
        }
        assert!(!stop.is_cancelled());
        assert_eq!(took_one.stopped_early(), None);

        // Few valid tokens among many forged ones: run to the end.
        let stop = CancellationToken::new();
        let mut counted = vec![true; REFUSALS as usize];
        counted.extend([false; 290]);
        let few = FailFast::new(300, counted, vec![true; 300], true, stop.clone());
        for conn in 0..300 {
            few.auth_refused(conn);
        }
        assert!(!stop.is_cancelled());
    }

    #[test]
    fn a_path_answered_404_before_any_upgrade_stops_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let mut counted = vec![true; 200];
        counted.extend([false; 100]);
        let fail = FailFast::new(300, vec![false; 300], counted.clone(), true, stop.clone());
        // Connections that do not count (forged tokens) stop nothing.
        for conn in 200..300 {
            fail.not_found(conn);
        }
        for conn in 0..REFUSALS as usize - 1 {
            fail.not_found(conn);
        }
        assert!(!stop.is_cancelled());
        fail.not_found(150);
        assert!(stop.is_cancelled());
        let why = Some((StopReason::NotFound, REFUSALS));
        assert_eq!(fail.stopped_early(), why);

        // A server that upgraded one connection first has the path: its 404s are findings.
        let stop = CancellationToken::new();
        let took_one = FailFast::new(300, vec![false; 300], counted, true, stop.clone());
        took_one.upgraded();
        for conn in 0..3 * REFUSALS as usize {
            took_one.not_found(conn);
        }
        assert!(!stop.is_cancelled());
        assert_eq!(took_one.stopped_early(), None);
    }

    /// Which 404s count toward a wrong path's early stop: valid tokens' first attempts, in
    /// a plan where nothing but the token tells their requests apart.
    #[test]
    fn a_wrong_path_counts_only_where_the_token_is_all_that_differs() {
        let ramp = "arrival = { ramp = \"5s\" }";
        let all = |counted: &[bool]| !counted.is_empty() && counted.iter().all(|c| *c);
        let none = |counted: &[bool]| counted.iter().all(|c| !*c);
        let plan = plan_of(&group("g", ramp));
        assert!(all(&path_counted(&plan, false)));
        assert!(
            none(&path_counted(&plan, true)),
            "a URL filled per connection"
        );
        let burst = plan_of(&group("g", "arrival = \"burst\""));
        assert!(
            none(&path_counted(&burst, false)),
            "a burst ends as soon anyway"
        );
        // One group's tenant may be gone: its 404 says nothing of the path.
        let tenant = format!("{ramp}\nheaders = {{ X-Tenant = \"gone\" }}");
        let groups = plan_of(&(group("gone", &tenant) + &group("live", ramp)));
        assert!(none(&path_counted(&groups, false)));
        // A header filled per connection may name a room that is not there.
        let room = format!("{ramp}\nheaders = {{ X-Room = \"r{{{{conn}}}}\" }}");
        assert!(none(&path_counted(&plan_of(&group("g", &room)), false)));
        let auth_room = plan_with("headers = { X-Room = \"r{{conn}}\" }", &group("g", ramp));
        assert!(none(&path_counted(&auth_room, false)), "[auth] headers too");
        let sub = "sub = \"{{group}}-{{user}}\"";
        let tenants = plan_with(sub, &(group("gone", ramp) + &group("live", ramp)));
        assert!(
            none(&path_counted(&tenants, false)),
            "a tenant in the subject"
        );
        // The token in the URL: a server may not find that session.
        let query = format!("{ramp}\nplacement = \"query\"");
        assert!(none(&path_counted(&plan_of(&group("g", &query)), false)));
        // Forged tokens never count (a refusal may be declared as a 404); valid ones do.
        let forged = format!("{ramp}\nforge = \"catalogue\"");
        let mixed = plan_of(&(group("valid", ramp) + &group("forged", &forged)));
        let counted = path_counted(&mixed, false);
        for (c, counts) in mixed.conns.iter().zip(&counted) {
            let forge = mixed.tokens[c.token as usize].forge.is_some();
            assert_eq!(*counts, !forge, "conn {}", c.id);
        }
        assert!(counted.iter().any(|c| *c));
    }

    #[test]
    fn a_refused_certificate_before_any_upgrade_stops_the_run_and_after_one_never() {
        let stop = CancellationToken::new();
        let fail = FailFast::new(200, vec![false; 200], vec![false; 200], true, stop.clone());
        for _ in 0..REFUSALS - 1 {
            fail.certificate_refused();
        }
        assert!(!stop.is_cancelled());
        fail.certificate_refused();
        assert!(stop.is_cancelled());
        let why = Some((StopReason::CertificateRefused, REFUSALS));
        assert_eq!(fail.stopped_early(), why);

        let stop = CancellationToken::new();
        let took_one = FailFast::new(200, vec![false; 200], vec![false; 200], true, stop.clone());
        took_one.upgraded();
        for _ in 0..3 * REFUSALS {
            took_one.certificate_refused();
        }
        assert!(!stop.is_cancelled());
        assert_eq!(took_one.stopped_early(), None);

        // A handshake that took the certificate, its upgrade still in flight (a balancer
        // with one bad backend): the refusals are that backend's, not the run's.
        let stop = CancellationToken::new();
        let mixed = FailFast::new(200, vec![false; 200], vec![false; 200], true, stop.clone());
        mixed.certificate_taken();
        for _ in 0..3 * REFUSALS {
            mixed.certificate_refused();
        }
        assert!(!stop.is_cancelled());

        // A burst: its other handshakes are in flight when the first refusals come.
        let stop = CancellationToken::new();
        let burst = FailFast::new(200, vec![false; 200], vec![false; 200], false, stop.clone());
        for _ in 0..3 * REFUSALS {
            burst.certificate_refused();
        }
        assert!(!stop.is_cancelled());
    }
}
