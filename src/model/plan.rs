//! The plan: what `plan::build` compiles a scenario and seed into, what the swarm runs,
//! and what a repro file stores.
//!
//! A plan's size follows the scenario, not the traffic: each group's steps are stored once
//! ([`Plan::scripts`]), repeats stay loops, and a connection's actions are drawn as it
//! walks them (`plan::Cursor`), each random choice (think times, `{{random}}`, ...) from a
//! counter-based derivation of (seed, connection, step path, iteration), so any iteration
//! is reproducible without expanding the rest. A connection may instead carry explicit,
//! already expanded actions ([`ConnPlan::actions`]): plans written before scripts existed
//! (every connection expanded) read back and replay unchanged, and shrinking writes the
//! actions it keeps that way.

use super::spec::{
    deep_steps, AnswerRule, AuthSpec, Capture, EnvText, EnvTextError, Feed, FieldTest, Forge,
    JwtAlg, Limits, OracleSpec, PatternItem, Placement, SecretSource, Step, TokenSource,
    MAX_ACTIONS_PER_CONNECTION,
};
use super::units::{duration_us, durations_us, shared_seq};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Everything the swarm needs to run, and everything a repro needs to replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub scenario: String,
    pub scenario_hash: String,
    /// [`crate::model::Scenario::content_hash`]: empty in plans written before it was
    /// kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scenario_content_hash: String,
    pub seed: u64,
    /// Hard stop, from the run start.
    #[serde(with = "duration_us")]
    pub duration: Duration,
    pub auth: AuthPlan,
    pub oracles: OracleSpec,
    pub limits: Limits,
    /// Group names, indexed by [`ConnPlan::group`].
    pub groups: Vec<String>,
    /// Token slots, indexed by [`ConnPlan::token`].
    pub tokens: Vec<TokenPlan>,
    /// Collide barriers, indexed by [`ConnPlan::barrier`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub barriers: Vec<BarrierPlan>,
    /// Message rendezvous points, indexed by [`Action::Rendezvous`]'s `point`: each
    /// `rendezvous` step of each group's script, groups in order, steps in script order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendezvous: Vec<RendezvousPlan>,
    /// Each group's script, indexed by [`ConnPlan::group`]: what a connection without
    /// explicit actions runs. Empty in plans written before scripts existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<Vec<Step>>,
    /// Each group's feeder, indexed by [`ConnPlan::group`] (rows not stored: see
    /// [`Feed`]). Empty when no group has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_feeds: Vec<Option<Feed>>,
    /// Each group's own subprotocols, indexed by [`ConnPlan::group`]: offered instead of
    /// [`AuthPlan::subprotocols`] when not empty. Empty when no group has any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_subprotocols: Vec<Vec<String>>,
    /// Each group's own upgrade headers, indexed by [`ConnPlan::group`], sent after
    /// [`AuthPlan::headers`] (a name in both: the group's value). Stored per group, not per
    /// connection; empty when no group has any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_headers: Vec<Vec<(String, EnvText)>>,
    /// What every connection answers the server's in-band pings with (`[[answer]]`),
    /// in file order. Empty in plans written before answers existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<AnswerRule>,
    /// Connections, sorted by start offset (ties by id).
    pub conns: Vec<ConnPlan>,
}

/// How tokens are minted and presented. Secrets and keys are resolved at run time
/// (`auth::resolve_keys`): a plan holds where they come from (an env var name, a path).
/// A `{ value = ... }` literal or an `env` default is held in memory while the plan is,
/// but a saved plan names it only (`"<redacted>"`, `"<development secret>"`; see
/// [`SecretText`](super::spec::SecretText)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthPlan {
    pub secret: SecretSource,
    #[serde(default)]
    pub alg: JwtAlg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<SecretSource>,
    #[serde(with = "duration_us")]
    pub ttl: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub placement: Placement,
    /// Extra upgrade headers (values from the environment kept as written: [`EnvText`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, EnvText)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in order (see [`AuthSpec`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// Where valid tokens come from when not minted (see [`TokenSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSource>,
}

impl AuthPlan {
    /// The scenario's `[auth]` minus the `sub` template (already expanded per token).
    pub fn from_spec(auth: &AuthSpec) -> Self {
        AuthPlan {
            secret: auth.secret.clone(),
            alg: auth.alg,
            key: auth.key.clone(),
            public_key: auth.public_key.clone(),
            ttl: auth.ttl,
            aud: auth.aud.clone(),
            iss: auth.iss.clone(),
            claims: auth.claims.clone(),
            placement: auth.placement.clone(),
            headers: auth.headers.clone(),
            origin: auth.origin.clone(),
            subprotocols: auth.subprotocols.clone(),
            tokens: auth.tokens.clone(),
        }
    }
}

/// One token: connections with the same slot present the same JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPlan {
    pub sub: String,
    pub jti: String,
    /// Forged or time-shifted; `None` for a valid token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<Forge>,
}

/// What separates a planned `jti` from the suffix one execution adds to it
/// (`plan::fresh_jtis`).
pub const RUN_SUFFIX: char = '~';

/// The `jti` a token slot was planned with: the text before [`RUN_SUFFIX`].
pub fn planned_jti(jti: &str) -> &str {
    jti.split(RUN_SUFFIX).next().unwrap_or(jti)
}

/// A last-byte barrier: its connections pre-open at `release - lead` and send their final
/// upgrade bytes together at `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarrierPlan {
    /// Index into [`Plan::groups`] (u32: a scenario may have more than 65,535 groups).
    pub group: u32,
    #[serde(with = "duration_us")]
    pub release: Duration,
    #[serde(with = "duration_us")]
    pub lead: Duration,
}

/// A message rendezvous point: the `step`-th `rendezvous` step (0-based, in script order)
/// of a group's script, shared by every connection of the group. Inside a `repeat` each
/// iteration is a meeting of its own: connections meet at (point, iteration) (see
/// [`Action::Rendezvous`]), so a loop stays a loop here too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RendezvousPlan {
    /// Index into [`Plan::groups`].
    pub group: u32,
    /// Which rendezvous of the group's script this is (0-based, in script order).
    pub step: u32,
    /// Arrivals that release everyone present: the group's size for `"all"`.
    pub count: u32,
    /// Longest wait, from the first arrival: then those present are released.
    #[serde(with = "duration_us")]
    pub timeout: Duration,
    /// How many meetings a connection walks through here: the product of the enclosing
    /// repeats' counts (saturating), 1 outside any repeat. Left out of plan files when 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub meetings: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One connection's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnPlan {
    pub id: u32,
    /// Index into [`Plan::groups`] and [`Plan::scripts`].
    pub group: u32,
    /// User index within the group.
    pub user: u32,
    /// Index into [`Plan::tokens`].
    pub token: u32,
    /// Intended start, from the run start.
    #[serde(with = "duration_us")]
    pub start: Duration,
    /// The collide barrier this connection's upgrade waits on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barrier: Option<u32>,
    /// The group's placement override; `None` uses [`AuthPlan::placement`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Explicit, expanded actions; empty: the connection runs its group's script
    /// ([`Plan::scripts`]). Left out of plan files when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

impl ConnPlan {
    /// Whether the connection runs its group's script rather than explicit actions.
    pub fn is_scripted(&self) -> bool {
        self.actions.is_empty()
    }
}

/// One expanded step. Durations are already sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Connect,
    /// Send the upgrade request, wait, then drop the socket (RST when `rst`).
    AbortHandshake {
        #[serde(with = "duration_us")]
        after: Duration,
        rst: bool,
    },
    /// Stored with its literal credential fields redacted
    /// ([`stored_message`](super::stored_message)).
    Send {
        #[serde(serialize_with = "super::spec::serialize_message")]
        message: serde_json::Value,
    },
    /// A text frame sent verbatim (placeholders already expanded). Stored with its
    /// literal credential lines redacted ([`stored_text`](super::stored_text)).
    SendText {
        #[serde(serialize_with = "super::spec::serialize_text")]
        text: String,
    },
    /// A binary frame: its bytes in standard base64.
    SendBinary {
        base64: String,
    },
    /// A Ping frame; with `within`, its Pong is awaited that long (see [`Step::Ping`]).
    Ping {
        payload: String,
        #[serde(
            default,
            with = "super::units::opt_duration_us",
            skip_serializing_if = "Option::is_none"
        )]
        within: Option<Duration>,
    },
    /// Boxed: an expectation is by far the largest action, and actions move by value
    /// through the cursor and the connection loop once per step.
    Expect(Box<ExpectPlan>),
    Think(#[serde(with = "duration_us")] Duration),
    /// Marks the start of a paced block: offsets below count from here.
    PaceStart,
    /// Open model: wait (reading) until the block start + this offset; the next send's
    /// latency counts from that intended instant, not from when it actually went out.
    PaceAt(#[serde(with = "duration_us")] Duration),
    PauseReads(#[serde(with = "duration_us")] Duration),
    Close {
        code: u16,
    },
    /// Wait at message rendezvous `point` (an index into [`Plan::rendezvous`]), meeting
    /// `iteration` (the flattened iteration of the enclosing repeats, 0-based; 0 outside
    /// them, and then left out of plan files): the next action, a `Send`, goes out when
    /// that meeting releases.
    Rendezvous {
        point: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        iteration: u64,
    },
    Reconnect {
        #[serde(with = "duration_us")]
        after: Duration,
        #[serde(with = "durations_us")]
        backoff: Vec<Duration>,
    },
}

/// An expectation with its correlation value resolved from the message sent before it.
/// Written to plan and repro files as one flat object (`ExpectPlanFile`); in memory, what
/// few expectations have is boxed ([`ExpectRare`]): an expectation is moved several times
/// on its way from the cursor to the checker, once per expected answer, and at 96 bytes
/// (176 with the rare fields inline) each move is a few register stores instead of a call
/// to `memcpy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "ExpectPlanFile", into = "ExpectPlanFile")]
pub struct ExpectPlan {
    /// Shared with the connection's other expectations of the same step when its items
    /// hold no placeholder.
    pub pattern: Arc<[PatternItem]>,
    /// `(field, value)`: only messages whose `field` equals `value` belong to this expectation.
    pub correlate: Option<(String, String)>,
    pub within: Duration,
    pub wait: bool,
    /// None of the pattern's kinds may arrive within `within` (`expect_none`).
    pub absent: bool,
    /// Field tests, captures, a name, where the cause carries the value: `None` when it has
    /// none of them (most expectations).
    pub rare: Option<Box<ExpectRare>>,
}

/// Moved whole several times per expected answer: at most 128 bytes, what the compiler
/// copies with a few stores instead of a call to `memcpy` (x86-64's baseline: eight 16-byte
/// moves).
const _: () = assert!(std::mem::size_of::<ExpectPlan>() <= 128);

/// What few expectations have ([`ExpectPlan::rare`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpectRare {
    /// Where the send that caused it carries `value`, when that is not `field` (the
    /// scenario's `correlate = { send = ..., reply = ... }`): how a shrink finds its cause.
    pub correlate_sent: Option<Box<str>>,
    /// Field tests, placeholders expanded; `{{$name}}` captures are resolved at run time.
    pub checks: Vec<FieldTest>,
    pub capture: Vec<Capture>,
    /// The expectation's name: its turn latency gets a histogram of its own.
    pub name: Option<String>,
    /// What it claims are pushes ([`crate::model::Expect::pushed`]): the learned identity
    /// oracle does not judge them.
    pub pushed: bool,
    /// Its correlation value is drawn afresh per request ([`crate::model::Expect::fresh`]):
    /// with `where` tests, a later record with the value is still its duplicate or late
    /// answer.
    pub fresh: bool,
}

impl ExpectRare {
    /// Whether it holds what a connection's checker reads: field tests, captures, a name
    /// or pushes (where the send carries the value is the shrinker's alone).
    pub fn judged(&self) -> bool {
        !self.checks.is_empty()
            || !self.capture.is_empty()
            || self.name.is_some()
            || self.pushed
            || self.fresh
    }

    fn is_empty(&self) -> bool {
        self.correlate_sent.is_none() && !self.judged()
    }
}

/// Equal as written to a file: rare fields left empty equal none.
impl PartialEq for ExpectPlan {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
            && self.correlate == other.correlate
            && self.within == other.within
            && self.wait == other.wait
            && self.absent == other.absent
            && self.correlate_sent() == other.correlate_sent()
            && self.checks() == other.checks()
            && self.capture() == other.capture()
            && self.name() == other.name()
            && self.pushed() == other.pushed()
            && self.fresh() == other.fresh()
    }
}

impl ExpectPlan {
    /// Whether what it claims are pushes ([`ExpectRare::pushed`]).
    pub fn pushed(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.pushed)
    }

    /// Whether its correlation value is drawn afresh per request ([`ExpectRare::fresh`]).
    pub fn fresh(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.fresh)
    }

    /// Its field tests (none for most).
    pub fn checks(&self) -> &[FieldTest] {
        self.rare.as_deref().map_or(&[], |r| r.checks.as_slice())
    }

    /// Its captures (none for most).
    pub fn capture(&self) -> &[Capture] {
        self.rare.as_deref().map_or(&[], |r| r.capture.as_slice())
    }

    /// Its name, when it has one.
    pub fn name(&self) -> Option<&str> {
        self.rare.as_deref().and_then(|r| r.name.as_deref())
    }

    /// Where the cause's send carries the correlation value, when not at the field itself.
    pub fn correlate_sent(&self) -> Option<&str> {
        self.rare
            .as_deref()
            .and_then(|r| r.correlate_sent.as_deref())
    }

    /// Its rare fields, to be written (made empty when it had none).
    pub fn rare_mut(&mut self) -> &mut ExpectRare {
        self.rare.get_or_insert_with(Box::default)
    }
}

/// [`ExpectPlan`] as plan and repro files hold it: every field at the top level.
#[derive(Serialize, Deserialize)]
struct ExpectPlanFile {
    #[serde(with = "shared_seq")]
    pattern: Arc<[PatternItem]>,
    correlate: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlate_sent: Option<Box<str>>,
    #[serde(with = "duration_us")]
    within: Duration,
    wait: bool,
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    checks: Vec<FieldTest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    capture: Vec<Capture>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    absent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pushed: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    fresh: bool,
}

impl From<ExpectPlanFile> for ExpectPlan {
    fn from(f: ExpectPlanFile) -> Self {
        let rare = ExpectRare {
            correlate_sent: f.correlate_sent,
            checks: f.checks,
            capture: f.capture,
            name: f.name,
            pushed: f.pushed,
            fresh: f.fresh,
        };
        ExpectPlan {
            pattern: f.pattern,
            correlate: f.correlate,
            within: f.within,
            wait: f.wait,
            absent: f.absent,
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
        }
    }
}

impl From<ExpectPlan> for ExpectPlanFile {
    fn from(e: ExpectPlan) -> Self {
        let rare = e.rare.map(|r| *r).unwrap_or_default();
        ExpectPlanFile {
            pattern: e.pattern,
            correlate: e.correlate,
            correlate_sent: rare.correlate_sent,
            within: e.within,
            wait: e.wait,
            checks: rare.checks,
            capture: rare.capture,
            absent: e.absent,
            name: rare.name,
            pushed: rare.pushed,
            fresh: rare.fresh,
        }
    }
}

/// What a settled expectation gives back to its connection for the next one: its
/// correlation strings, to be written over, and its pattern, to be handed on when the next
/// expectation has the same one. Moved, not made again: no two strings allocated and no
/// reference count updated (an atomic add that waits for every pending store) per expected
/// answer.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// `(field, value)` of the last settled correlated expectation.
    pub correlate: Option<(String, String)>,
    /// The items of the last settled expectation's pattern.
    pub pattern: Option<Arc<[PatternItem]>>,
}

impl Action {
    /// Whether it sends a data frame (JSON, text or binary): what counts as a request.
    pub fn is_send(&self) -> bool {
        matches!(
            self,
            Action::Send { .. } | Action::SendText { .. } | Action::SendBinary { .. }
        )
    }
}

impl Plan {
    /// Whether two connections of the plan present one user to the server: a valid token's
    /// `sub` on more than one connection (`connections_per_user` above 1, a `sub` template
    /// that names no `{{user}}`, two groups minting the same names), or, with `[auth]
    /// tokens`, more valid token slots than the `tokens_read` tokens it read (the run deals
    /// them round-robin). Forged tokens are left out: learned invariants never judge them.
    pub fn shares_users(&self, tokens_read: Option<usize>) -> bool {
        let valid: Vec<(u32, &str)> = self
            .conns
            .iter()
            .filter_map(|c| {
                let token = self.tokens.get(c.token as usize)?;
                token
                    .forge
                    .is_none()
                    .then_some((c.token, token.sub.as_str()))
            })
            .collect();
        let subs: std::collections::BTreeSet<&str> = valid.iter().map(|(_, sub)| *sub).collect();
        let slots: std::collections::BTreeSet<u32> = valid.iter().map(|(slot, _)| *slot).collect();
        subs.len() < valid.len() || tokens_read.is_some_and(|n| n < slots.len())
    }

    /// Whether the plan releases connections together: a collide barrier or a message
    /// rendezvous.
    pub fn releases_together(&self) -> bool {
        !self.barriers.is_empty() || !self.rendezvous.is_empty()
    }

    /// Canonical JSON of the plan.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Hex SHA-256 of the canonical JSON: names a plan in results and repros. Taken over
    /// the planned `jti`s ([`planned_jti`]): every execution of one plan presents tokens of
    /// its own, and its hash stays the plan's.
    pub fn hash(&self) -> String {
        let json = if self.tokens.iter().any(|t| t.jti.contains(RUN_SUFFIX)) {
            let mut planned = self.clone();
            for t in &mut planned.tokens {
                t.jti = planned_jti(&t.jti).to_string();
            }
            serde_json::to_vec(&planned)
        } else {
            serde_json::to_vec(self)
        }
        .unwrap_or_default();
        Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Checks the references inside a plan read from a file (a repro may be hand-edited):
    /// every token, barrier and group index must exist, and connection ids must be unique.
    /// `build` only makes valid plans; this guards the swarm's indexing against the rest.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for c in &self.conns {
            if c.token as usize >= self.tokens.len() {
                return Err(format!(
                    "connection {} uses token {}, but the plan has {}",
                    c.id,
                    c.token,
                    self.tokens.len()
                ));
            }
            if c.barrier.is_some_and(|b| b as usize >= self.barriers.len()) {
                return Err(format!(
                    "connection {} waits on a barrier the plan does not have",
                    c.id
                ));
            }
            if c.group as usize >= self.groups.len() {
                return Err(format!(
                    "connection {} is in group {}, but the plan has {}",
                    c.id,
                    c.group,
                    self.groups.len()
                ));
            }
            if c.is_scripted() && c.group as usize >= self.scripts.len() {
                return Err(format!(
                    "connection {} has no actions and its group has no script",
                    c.id
                ));
            }
            let meetings = c.actions.iter().filter_map(|a| match a {
                Action::Rendezvous { point, iteration } => Some((*point, *iteration)),
                _ => None,
            });
            for (point, iteration) in meetings {
                let Some(p) = self.rendezvous.get(point as usize) else {
                    return Err(format!(
                        "connection {} waits at rendezvous {point}, but the plan has {}",
                        c.id,
                        self.rendezvous.len()
                    ));
                };
                if iteration >= p.meetings {
                    return Err(format!(
                        "connection {} waits at meeting {iteration} of rendezvous {point}, \
                         which has {}",
                        c.id, p.meetings
                    ));
                }
            }
            if !ids.insert(c.id) {
                return Err(format!("connection id {} appears twice", c.id));
            }
        }
        // A script's size, as a scenario's is checked when it is loaded: a repro file is
        // the plan as written, and an edited one could hold loops past what step numbers
        // and `{{run}}` count.
        for (g, script) in self.scripts.iter().enumerate() {
            let actions = script_size(script).actions;
            if actions > MAX_ACTIONS_PER_CONNECTION {
                return Err(format!(
                    "group {g}'s script expands to {actions} actions per connection (each \
                     repeat multiplies its steps); at most {MAX_ACTIONS_PER_CONNECTION}"
                ));
            }
        }
        self.check_rendezvous()
    }

    /// Every rendezvous point is in a group the plan has, and every `rendezvous` step of a
    /// script has its point (the cursor numbers them in script order).
    fn check_rendezvous(&self) -> Result<(), String> {
        if let Some(p) = self
            .rendezvous
            .iter()
            .find(|p| p.group as usize >= self.groups.len())
        {
            return Err(format!(
                "rendezvous {} is in group {}, but the plan has {}",
                p.step,
                p.group,
                self.groups.len()
            ));
        }
        for (group, script) in self.scripts.iter().enumerate() {
            let steps = script_rendezvous(script).len();
            for step in 0..steps {
                if self.rendezvous_point(group as u32, step as u32).is_none() {
                    return Err(format!(
                        "group {group}'s script has {steps} rendezvous steps, but the plan \
                         has no point for rendezvous {step} of it"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The index in [`Plan::rendezvous`] of a group's `step`-th rendezvous (0-based, in
    /// script order).
    pub fn rendezvous_point(&self, group: u32, step: u32) -> Option<u32> {
        self.rendezvous
            .iter()
            .position(|p| p.group == group && p.step == step)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The name of a connection's group.
    pub fn group_name(&self, conn: &ConnPlan) -> String {
        self.groups
            .get(conn.group as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// For each token of `tokens` (by index), whether another connection of the plan
    /// presents it, or another token of the same subject (`sub`: several connections of
    /// one user, each minting its own token): only then may a connection presenting it be
    /// taken over by another, by a server that keeps one session per token or one per
    /// user (a "newest connection wins" close, `reject.replaced`).
    pub fn sessions_shared(&self) -> Vec<bool> {
        let subjects = self.subject_slots();
        let mut by_token = vec![0u8; self.tokens.len()];
        let mut by_subject = vec![0u8; self.tokens.len()];
        for conn in &self.conns {
            let slot = conn.token as usize;
            if let (Some(n), Some(&s)) = (by_token.get_mut(slot), subjects.get(slot)) {
                *n = n.saturating_add(1);
                by_subject[s as usize] = by_subject[s as usize].saturating_add(1);
            }
        }
        by_token
            .iter()
            .zip(&subjects)
            .map(|(&n, &s)| n > 1 || by_subject[s as usize] > 1)
            .collect()
    }

    /// For each token of `tokens` (by index), the first valid token slot with the same
    /// subject (`sub`): one number per user, whatever token each of its connections
    /// presents (what a server keeping one session per user counts by). A forged or
    /// time-shifted token is a user of its own: it holds no session of its subject's.
    pub fn subject_slots(&self) -> Vec<u32> {
        let mut first: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        (0u32..)
            .zip(&self.tokens)
            .map(|(slot, t)| match t.forge {
                Some(_) => slot,
                None => *first.entry(t.sub.as_str()).or_insert(slot),
            })
            .collect()
    }

    /// Where a connection's token travels: its group's override, or `[auth]`'s.
    pub fn placement_of<'a>(&'a self, conn: &'a ConnPlan) -> &'a Placement {
        conn.placement.as_ref().unwrap_or(&self.auth.placement)
    }

    /// The distinct `expect` names, in order of first appearance (connections in plan
    /// order, each walking its script or explicit actions): the index of a name is its
    /// turn histogram's. Scenarios hold at most `MAX_TURN_NAMES` of them.
    pub fn turn_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: Option<&str>| {
            if let Some(n) = name {
                if !names.iter().any(|kept| kept == n) {
                    names.push(n.to_string());
                }
            }
        };
        // Each group's script once: a million connections of one group add nothing new.
        let mut walked = vec![false; self.scripts.len()];
        for conn in &self.conns {
            match self.script_of(conn) {
                Some(steps) => {
                    let Some(seen) = walked.get_mut(conn.group as usize) else {
                        continue;
                    };
                    if !std::mem::replace(seen, true) {
                        deep_steps(steps).for_each(|s| {
                            if let Step::Expect(e) = s {
                                add(e.name.as_deref());
                            }
                        });
                    }
                }
                None => {
                    for action in &conn.actions {
                        if let Action::Expect(e) = action {
                            add(e.name());
                        }
                    }
                }
            }
        }
        names
    }

    /// A connection's feeder columns and row (`None`: its group has no feeder, or its rows
    /// are not loaded).
    pub fn feed_of(&self, conn: &ConnPlan) -> Option<(&[String], &[String])> {
        self.feed_of_user(conn.group, conn.user)
    }

    /// [`Plan::feed_of`] by the connection's group and user.
    pub fn feed_of_user(&self, group: u32, user: u32) -> Option<(&[String], &[String])> {
        let feed = self.group_feeds.get(group as usize)?.as_ref()?;
        Some((feed.columns.as_slice(), feed.row(user)?))
    }

    /// The subprotocols of a connection's group, if it has its own (see
    /// [`Plan::group_subprotocols`]).
    pub fn subprotocols_of(&self, conn: &ConnPlan) -> &[String] {
        self.group_subprotocols
            .get(conn.group as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Every text of the plan that may have come from the environment: `[auth]` headers,
    /// the groups' headers, and a login request's headers, URL and body.
    fn env_texts_mut(&mut self) -> impl Iterator<Item = &mut EnvText> {
        let (login_headers, login_texts) = match &mut self.auth.tokens {
            Some(TokenSource::Login(login)) => (
                Some(&mut login.headers),
                Some(std::iter::once(&mut login.url).chain(login.body.as_mut())),
            ),
            _ => (None, None),
        };
        self.auth
            .headers
            .iter_mut()
            .chain(self.group_headers.iter_mut().flatten())
            .chain(login_headers.into_iter().flatten())
            .map(|(_, v)| v)
            .chain(login_texts.into_iter().flatten())
    }

    /// Every text of the plan that may have come from the environment (see
    /// [`Plan::env_texts_mut`]).
    fn env_texts(&self) -> impl Iterator<Item = &EnvText> {
        let (login_headers, login_texts) = match &self.auth.tokens {
            Some(TokenSource::Login(login)) => (
                Some(&login.headers),
                Some(std::iter::once(&login.url).chain(login.body.as_ref())),
            ),
            _ => (None, None),
        };
        self.auth
            .headers
            .iter()
            .chain(self.group_headers.iter().flatten())
            .chain(login_headers.into_iter().flatten())
            .map(|(_, v)| v)
            .chain(login_texts.into_iter().flatten())
    }

    /// Expands, through `lookup`, the environment variables of the texts a plan read back
    /// from a file holds only as written (see [`EnvText`]); a text whose variable is
    /// missing stays unknown, and [`Plan::missing_env`] says so.
    pub fn fill_env(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        for text in self.env_texts_mut() {
            text.fill(lookup);
        }
    }

    /// The first literal credential of the plan that a file did not store (see
    /// [`EnvText::Secret`]), named as the scenario names it: a plan read back from a
    /// file cannot send it.
    pub fn not_stored(&self) -> Option<EnvTextError> {
        let named = |what: &str, headers: &[(String, EnvText)]| {
            headers
                .iter()
                .find(|(_, v)| v.is_not_stored())
                .map(|(name, _)| format!("{what} {name}"))
        };
        let login = match &self.auth.tokens {
            Some(TokenSource::Login(login)) => Some(login),
            _ => None,
        };
        named("auth.headers", &self.auth.headers)
            .or_else(|| {
                let groups = self.group_headers.iter().zip(&self.groups);
                groups
                    .into_iter()
                    .find_map(|(h, g)| named(&format!("group {g:?} headers"), h))
            })
            .or_else(|| login.and_then(|l| named("auth.tokens.headers", &l.headers)))
            .or_else(|| {
                login
                    .filter(|l| l.url.is_not_stored())
                    .map(|_| "auth.tokens.login".to_string())
            })
            .or_else(|| {
                let body = login.and_then(|l| l.body.as_ref());
                body.filter(|b| b.is_not_stored())
                    .map(|_| "auth.tokens.body".to_string())
            })
            .or_else(|| self.message_not_stored())
            .map(|what| EnvTextError::NotStored { what })
    }

    /// The first credential field of a message the plan sends that a file did not store
    /// ([`super::stored_message`]): in a `first_message`, a script's `send` or
    /// `send_text`, or a connection's explicit actions, named for the user
    /// (`group "chatters" step 2 field password`).
    fn message_not_stored(&self) -> Option<String> {
        // A text first message (`first_text`) is named by its line, as a `send_text` is.
        let placed = |p: &Placement| match p {
            Placement::FirstMessage { template, text, .. } => super::message_not_stored(template)
                .map(|name| match text {
                    true => format!("auth first_text line {name}"),
                    false => format!("auth first_message field {name}"),
                }),
            _ => None,
        };
        let first_message = placed(&self.auth.placement).or_else(|| {
            self.conns
                .iter()
                .filter_map(|c| c.placement.as_ref())
                .find_map(placed)
        });
        if first_message.is_some() {
            return first_message;
        }
        let step = |step: &Step| match step {
            Step::Send { template } => super::message_not_stored(template),
            Step::SendText { template } => super::text_not_stored(template),
            _ => None,
        };
        let scripts = self.scripts.iter().zip(&self.groups);
        for (script, group) in scripts {
            if let Some(field) = super::deep_steps(script).find_map(step) {
                return Some(format!("a send of group {group:?}, its field {field}"));
            }
        }
        let action = |a: &Action| match a {
            Action::Send { message } => super::message_not_stored(message),
            Action::SendText { text } => super::text_not_stored(text),
            _ => None,
        };
        self.conns
            .iter()
            .find_map(|c| c.actions.iter().find_map(action))
            .map(|field| format!("a send, its field {field}"))
    }

    /// The first environment variable a text of the plan needs and `lookup` lacks (a
    /// plan read back from a file, replayed without it); `None`: every value is known.
    pub fn missing_env(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<EnvTextError> {
        self.env_texts().find_map(|v| v.missing(lookup))
    }

    /// The values of every environment variable the plan's texts and `url` (the target as
    /// written) name, each to be shown as its `${NAME}` (`EnvValues`), and every literal
    /// credential (shown `<redacted>`): what a server echoes of them (an API key in a 401
    /// body) must not reach the output.
    pub fn env_values(
        &self,
        url: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> super::EnvValues {
        let written: Vec<&str> = std::iter::once(url)
            .chain(self.env_texts().filter_map(|t| match t {
                EnvText::Env { written, .. } => Some(written.as_str()),
                EnvText::Plain(_) | EnvText::Secret(_) => None,
            }))
            .collect();
        // One text: each `${NAME}` in it is read as in its own.
        let mut values = super::EnvValues::of(&written.join("\n"), lookup);
        // A literal credential in the URL (`?access_token=...`, a password) a server
        // echoes (an error page quoting the request line) is hidden as the URL is shown.
        for value in super::url::literal_credentials(url) {
            values.add(&value, super::url::PASSWORD_SHOWN);
        }
        // A literal credential a server echoes is hidden as the plan file shows it.
        for text in self.env_texts() {
            if let EnvText::Secret(secret) = text {
                if let Some(value) = secret.value() {
                    values.add(value, secret.marker());
                }
            }
        }
        values
    }

    /// The group's own upgrade headers (see [`Plan::group_headers`]).
    pub fn headers_of(&self, conn: &ConnPlan) -> &[(String, EnvText)] {
        self.group_headers
            .get(conn.group as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The paths the `where` tests of every `expect` and `expect_none` name, as written
    /// (each group's script once; a connection without a script, its expanded actions).
    pub fn where_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for steps in &self.scripts {
            deep_steps(steps).for_each(|s| {
                if let Step::Expect(e) = s {
                    paths.extend(e.checks.iter().map(|t| t.path.clone()));
                }
            });
        }
        for conn in self.conns.iter().filter(|c| !c.is_scripted()) {
            for action in &conn.actions {
                if let Action::Expect(e) = action {
                    paths.extend(e.checks().iter().map(|t| t.path.clone()));
                }
            }
        }
        paths.sort_unstable();
        paths.dedup();
        paths
    }

    /// Whether some expectation of this connection tests fields or captures values: its
    /// checker then keeps the bodies of the messages it buffers.
    pub fn tests_fields(&self, conn: &ConnPlan) -> bool {
        match self.script_of(conn) {
            Some(steps) => deep_steps(steps).any(
                |s| matches!(s, Step::Expect(e) if !e.checks.is_empty() || !e.capture.is_empty()),
            ),
            None => conn.actions.iter().any(
                |a| matches!(a, Action::Expect(e) if !e.checks().is_empty() || !e.capture().is_empty()),
            ),
        }
    }

    /// The script a scripted connection runs (`None` for explicit actions, or a group
    /// without a script in a hand-edited plan).
    pub fn script_of(&self, conn: &ConnPlan) -> Option<&[Step]> {
        if conn.is_scripted() {
            self.scripts.get(conn.group as usize).map(Vec::as_slice)
        } else {
            None
        }
    }

    /// Number of Send actions over all connections (saturating: loops multiply).
    pub fn sends(&self) -> u64 {
        self.conns
            .iter()
            .map(|c| match self.script_of(c) {
                Some(steps) => script_size(steps).sends,
                None => c.actions.iter().filter(|a| a.is_send()).count() as u64,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Actions a connection runs: its explicit actions, or what its script expands to
    /// (saturating at `u64::MAX`).
    pub fn actions_of(&self, conn: &ConnPlan) -> u64 {
        match self.script_of(conn) {
            Some(steps) => script_size(steps).actions,
            None => conn.actions.len() as u64,
        }
    }

    /// Whether any connection has an expectation.
    pub fn has_expect(&self) -> bool {
        // Per script once, then per connection: only the scripts some connection runs.
        let scripted: Vec<bool> = self
            .scripts
            .iter()
            .map(|s| deep_steps(s).any(|s| matches!(s, Step::Expect(_))))
            .collect();
        self.conns.iter().any(|c| {
            if c.is_scripted() {
                scripted.get(c.group as usize).copied().unwrap_or(false)
            } else {
                c.actions.iter().any(|a| matches!(a, Action::Expect(_)))
            }
        })
    }

    /// Where a connection's `send` templates put the `{{marker}}` placeholder (a string
    /// value that is exactly the placeholder), as JSON Pointers, in order of first use: the
    /// fields an echoed message's marker is read back from (flood mode, see
    /// `docs/scenarios.md`). Empty for almost every scenario.
    pub fn marker_fields(&self, conn: &ConnPlan) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        let mut add = |message: &serde_json::Value| marker_paths(message, "", &mut fields);
        match self.script_of(conn) {
            Some(steps) => deep_steps(steps).for_each(|s| {
                if let Step::Send { template } = s {
                    add(template);
                }
            }),
            None => {
                for action in &conn.actions {
                    if let Action::Send { message } = action {
                        add(message);
                    }
                }
            }
        }
        fields
    }

    /// Correlation fields a connection's expectations use (usually just one), in order of
    /// first use.
    /// Every kind an `expect` or `expect_none` of group `group`'s script names: what an
    /// expectation of its connections could ever claim. `None` when a kind is written with
    /// a placeholder (known only as the script runs) or the group has no script.
    pub fn script_kinds(&self, group: usize) -> Option<std::collections::BTreeSet<String>> {
        let steps = self.scripts.get(group)?;
        let mut kinds = std::collections::BTreeSet::new();
        let mut known = true;
        deep_steps(steps).for_each(|s| {
            if let Step::Expect(e) = s {
                for item in e.pattern.iter() {
                    known &= !item.event.contains("{{");
                    kinds.insert(item.event.clone());
                }
            }
        });
        known.then_some(kinds)
    }

    /// The paths, in the sends, that `conn`'s expectations take their correlation values
    /// from (`correlate`, or its `send` path), each once, in script order.
    pub fn correlate_fields(&self, conn: &ConnPlan) -> Vec<String> {
        self.correlated_paths(conn, false)
    }

    /// The paths, in the answers, that carry `conn`'s correlation values: `correlate`, or
    /// its `reply` path where the scenario names one. What the checker reads from every
    /// message it keeps.
    pub fn reply_fields(&self, conn: &ConnPlan) -> Vec<String> {
        self.correlated_paths(conn, true)
    }

    fn correlated_paths(&self, conn: &ConnPlan, replies: bool) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        let mut add = |field: &String| {
            if !fields.contains(field) {
                fields.push(field.clone());
            }
        };
        match self.script_of(conn) {
            Some(steps) => deep_steps(steps).for_each(|s| {
                if let Step::Expect(e) = s {
                    let reply = e.correlate_reply.as_ref().filter(|_| replies);
                    if let Some(f) = reply.or(e.correlate.as_ref()) {
                        add(f);
                    }
                }
            }),
            None => {
                for action in &conn.actions {
                    if let Action::Expect(e) = action {
                        if let Some((field, _)) = &e.correlate {
                            add(field);
                        }
                    }
                }
            }
        }
        fields
    }
}

/// A deterministic slice of a plan: a connection belongs to shard `index` of `count` when
/// its session's number ([`Plan::session_slots`]: its token slot, or with sessions kept
/// per user its token's user's rank) is `index` modulo `count`. Written
/// `index/count` (`0/4`), 0-based. By session, not by connection: the connections that
/// present one token (several per user, a reused token), or one user's tokens when the
/// scenario keeps sessions per user (`exclusive = { per = "user" }`), are the sides of an
/// exclusivity race and must run in one process, where the oracle sees them all. Shards of one (scenario, seed) are disjoint and together
/// hold every connection, so `stampede merge` of their results equals one process's run
/// (counters add, histograms merge). A plan whose connections all share one token runs
/// whole in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the session numbered `slot` ([`Plan::session_slots`]) is in this shard.
    pub fn contains(self, slot: u32) -> bool {
        self.count > 0 && slot % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `i/n` with `n >= 1` and `i < n`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!("expected a shard as INDEX/COUNT with INDEX < COUNT, e.g. 0/4, found {text:?}")
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        // Whole numbers past `u32` are named as such, not as an INDEX/COUNT slip.
        let number = |part: &str| -> Result<u32, String> {
            let part = part.trim();
            match part.parse::<u32>() {
                Ok(n) => Ok(n),
                Err(_) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                    Err(format!(
                        "a shard's COUNT is at most {} (and its INDEX less than its COUNT), \
                         found {text:?}",
                        u32::MAX
                    ))
                }
                Err(_) => Err(bad()),
            }
        };
        let index = number(i)?;
        let count = number(n)?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Plan {
    /// Keeps only the connections of `shard` (token slots, groups and barriers stay, so
    /// indexes remain valid and every shard mints the same tokens).
    pub fn keep_shard(&mut self, shard: Shard) {
        let slots = self.session_slots();
        let mut keep = slots.into_iter().map(|slot| shard.contains(slot));
        self.conns.retain(|_| keep.next().unwrap_or(false));
    }

    /// For each connection, in order, the number that stands for its session: its token
    /// slot, or, when sessions are kept per user ([`crate::model::SessionKey::User`]), its
    /// token's user's rank among the plan's users (one user's tokens are one session, and
    /// their connections one shard's). Linear in the plan.
    pub fn session_slots(&self) -> Vec<u32> {
        if self.oracles.session.per != crate::model::SessionKey::User {
            return self.conns.iter().map(|c| c.token).collect();
        }
        // The sessions as the session oracles count them ([`Plan::subject_slots`]: a
        // user's valid tokens one, each forged token its own), each by its rank (0, 1,
        // 2, …): its first slot would crowd the shards (two tokens per user: every one even).
        let subjects = self.subject_slots();
        let mut rank: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for &subject in &subjects {
            let next = u32::try_from(rank.len()).unwrap_or(u32::MAX);
            rank.entry(subject).or_insert(next);
        }
        self.conns
            .iter()
            .map(|c| {
                subjects
                    .get(c.token as usize)
                    .and_then(|s| rank.get(s).copied())
                    .unwrap_or(c.token)
            })
            .collect()
    }
}

/// What a script expands to, counted without expanding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScriptSize {
    /// Actions, the connect (or aborted handshake) included.
    pub actions: u64,
    /// Send actions.
    pub sends: u64,
}

/// Counts a script's actions and sends with saturating arithmetic (a `repeat` multiplies
/// its body), in the shape `plan::Cursor` walks it: one connect or aborted handshake
/// first, a paced repeat adds one action to start it and one per iteration.
pub fn script_size(steps: &[Step]) -> ScriptSize {
    let rest = match steps.first() {
        Some(Step::AbortHandshake { .. }) => &steps[1..],
        _ => steps,
    };
    let body = steps_size(rest);
    ScriptSize {
        actions: body.actions.saturating_add(1),
        sends: body.sends,
    }
}

fn steps_size(steps: &[Step]) -> ScriptSize {
    let mut size = ScriptSize::default();
    for step in steps {
        let (actions, sends) = match step {
            Step::Send { .. } | Step::SendText { .. } | Step::SendBinary { .. } => (1, 1),
            Step::Ping { .. } => (1, 0),
            Step::Repeat {
                times,
                steps,
                every,
            } => {
                let body = steps_size(steps);
                let per = body.actions.saturating_add(u64::from(every.is_some()));
                let times = u64::from(*times);
                (
                    times
                        .saturating_mul(per)
                        .saturating_add(u64::from(every.is_some())),
                    times.saturating_mul(body.sends),
                )
            }
            // Validation allows it only first, where `script_size` took it off.
            Step::AbortHandshake { .. } => (0, 0),
            _ => (1, 0),
        };
        size.actions = size.actions.saturating_add(actions);
        size.sends = size.sends.saturating_add(sends);
    }
    size
}

/// The text of the flood marker placeholder (see [`Plan::marker_fields`]).
pub const MARKER: &str = "{{marker}}";

/// Appends to `out` the JSON Pointer of every string in `value` that is exactly [`MARKER`].
fn marker_paths(value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    let mut push = |path: String| {
        if !out.contains(&path) {
            out.push(path);
        }
    };
    match value {
        Value::String(s) if s.trim() == MARKER && !at.is_empty() => push(at.to_string()),
        Value::Object(map) => {
            for (key, v) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                marker_paths(v, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                marker_paths(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A `rendezvous` step of a script as the scenario wrote it, with how many meetings it
/// holds (see [`RendezvousPlan::meetings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptRendezvous {
    /// Arrivals that release it; `None`: the whole group.
    pub count: Option<u32>,
    /// Longest wait from the first arrival.
    pub timeout: Duration,
    /// The product of the enclosing repeats' counts (saturating).
    pub meetings: u64,
}

/// A script's `rendezvous` steps in script order (depth first, a repeat's body where the
/// repeat is): the order [`Plan::rendezvous`] numbers a group's points in.
pub fn script_rendezvous(steps: &[Step]) -> Vec<ScriptRendezvous> {
    fn walk(steps: &[Step], meetings: u64, out: &mut Vec<ScriptRendezvous>) {
        for step in steps {
            match step {
                Step::Rendezvous { count, timeout } => out.push(ScriptRendezvous {
                    count: *count,
                    timeout: *timeout,
                    meetings,
                }),
                Step::Repeat { times, steps, .. } => {
                    walk(steps, meetings.saturating_mul(u64::from(*times)), out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(steps, 1, &mut out);
    out
}
