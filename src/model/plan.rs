//! The plan: what `plan::build` compiles a scenario and seed into, what the swarm runs,
//! and what a repro file stores. Every random choice is already made; durations are
//! sampled; a saved plan replays without any RNG.

use super::spec::{
    AuthSpec, Forge, JwtAlg, Limits, OracleSpec, PatternItem, Placement, SecretSource,
};
use super::units::{duration_us, durations_us};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Everything the swarm needs to run, and everything a repro needs to replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub scenario: String,
    pub scenario_hash: String,
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
    /// Message rendezvous points, indexed by [`Action::Rendezvous`]'s `point`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendezvous: Vec<RendezvousPlan>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
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

/// A last-byte barrier: its connections pre-open at `release - lead` and send their final
/// upgrade bytes together at `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarrierPlan {
    pub group: u16,
    #[serde(with = "duration_us")]
    pub release: Duration,
    #[serde(with = "duration_us")]
    pub lead: Duration,
}

/// A message rendezvous point: the `step`-th rendezvous (0-based) in the scripts of a
/// group's connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RendezvousPlan {
    pub group: u16,
    /// Which rendezvous of the group's script this is (0-based, in expanded order).
    pub step: u32,
    /// Arrivals that release everyone present: the group's size for `"all"`.
    pub count: u32,
    /// Longest wait, from the first arrival: then those present are released.
    #[serde(with = "duration_us")]
    pub timeout: Duration,
}

/// One connection's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnPlan {
    pub id: u32,
    pub group: u16,
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
    pub actions: Vec<Action>,
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
    Send {
        message: serde_json::Value,
    },
    Expect(ExpectPlan),
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
    /// Wait at message rendezvous `point` (an index into [`Plan::rendezvous`]): the next
    /// action, a `Send`, goes out when the rendezvous releases.
    Rendezvous {
        point: u32,
    },
    Reconnect {
        #[serde(with = "duration_us")]
        after: Duration,
        #[serde(with = "durations_us")]
        backoff: Vec<Duration>,
    },
}

/// An expectation with its correlation value resolved from the message sent before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectPlan {
    pub pattern: Vec<PatternItem>,
    /// `(field, value)`: only messages whose `field` equals `value` belong to this expectation.
    pub correlate: Option<(String, String)>,
    #[serde(with = "duration_us")]
    pub within: Duration,
    pub wait: bool,
}

impl Plan {
    /// Canonical JSON of the plan.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Hex SHA-256 of the canonical JSON: names a plan in results and repros.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
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
            let points = c.actions.iter().filter_map(|a| match a {
                Action::Rendezvous { point } => Some(*point),
                _ => None,
            });
            for point in points {
                if point as usize >= self.rendezvous.len() {
                    return Err(format!(
                        "connection {} waits at rendezvous {point}, but the plan has {}",
                        c.id,
                        self.rendezvous.len()
                    ));
                }
            }
            if !ids.insert(c.id) {
                return Err(format!("connection id {} appears twice", c.id));
            }
        }
        Ok(())
    }

    /// The name of a connection's group.
    pub fn group_name(&self, conn: &ConnPlan) -> String {
        self.groups
            .get(conn.group as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Where a connection's token travels: its group's override, or `[auth]`'s.
    pub fn placement_of<'a>(&'a self, conn: &'a ConnPlan) -> &'a Placement {
        conn.placement.as_ref().unwrap_or(&self.auth.placement)
    }

    /// Number of Send actions over all connections.
    pub fn sends(&self) -> usize {
        self.conns
            .iter()
            .flat_map(|c| &c.actions)
            .filter(|a| matches!(a, Action::Send { .. }))
            .count()
    }
}
