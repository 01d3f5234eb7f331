//! Scenario + seed → [`Plan`]: every connection's user, token slot, start offset and
//! fully expanded actions (messages, think times, backoffs).
//!
//! `build` is a pure function. Every random choice is made here from ChaCha streams
//! (stream 0 for tokens, stream `conn + 1` for each connection), never in the swarm:
//! ChaCha output is specified, unlike `StdRng`'s, so a plan rebuilt by a later version from
//! the same (scenario, seed) is the same plan, and a saved plan replays without any RNG.

mod arrival;
mod sample;
mod template;

pub use sample::sample;
pub use template::expand;

use crate::scenario::model::{duration_us, durations_us};
use crate::scenario::{
    AbortHow, Arrival, Expect, Forge, Group, JwtAlg, Limits, OracleSpec, Placement, Scenario,
    SecretSource, Step, TokenReuse,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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
    /// Connections, sorted by start offset (ties by id).
    pub conns: Vec<ConnPlan>,
}

/// How tokens are minted and presented. Secrets and keys are resolved at run time
/// (`auth::resolve_keys`): a plan holds where they come from (an env var name, a path),
/// except for `{ value = ... }` literals, which are for demos only.
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
    pub fn from_spec(auth: &crate::scenario::AuthSpec) -> Self {
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

/// Adds a barrier for a collide group and returns its index.
fn collide_barrier(
    barriers: &mut Vec<BarrierPlan>,
    group: usize,
    arrival: &Arrival,
    n: u32,
) -> Option<u32> {
    let Arrival::Collide { at } = arrival else {
        return None;
    };
    let lead = arrival::collide_lead(n);
    barriers.push(BarrierPlan {
        group: group as u16,
        release: (*at).max(lead),
        lead,
    });
    Some((barriers.len() - 1) as u32)
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
    pub pattern: Vec<crate::scenario::PatternItem>,
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

/// Compiles a scenario into a plan. Pure: the same inputs give the same plan, byte for byte.
pub fn build(scenario: &Scenario, seed: u64) -> Plan {
    let mut minter = Minter {
        rng: ChaCha8Rng::seed_from_u64(seed),
        sub: &scenario.auth.sub,
        tokens: Vec::new(),
    };
    let mut conns = Vec::new();
    let mut barriers = Vec::new();
    for (gi, group) in scenario.groups.iter().enumerate() {
        let n = group.users * group.connections_per_user;
        let offsets = arrival::offsets(&group.arrival, n);
        let slots = minter.slots_for(group);
        let barrier = collide_barrier(&mut barriers, gi, &group.arrival, n);
        for index in 0..n {
            let id = conns.len() as u32;
            let user = index / group.connections_per_user;
            let slot = slots[index as usize];
            let mut rng = conn_rng(seed, id);
            let start = match barrier {
                // Pre-open ahead of the release; the barrier, not jitter, sets the timing.
                Some(b) => barriers[b as usize].release - barriers[b as usize].lead,
                None => {
                    offsets.get(index as usize).copied().unwrap_or_default()
                        + sample(&group.jitter, &mut rng)
                }
            };
            let sub = &minter.tokens[slot as usize].sub;
            let vars = template::Vars {
                user,
                conn: id,
                group: &group.name,
                sub,
            };
            let actions = expand_steps(&group.steps, &vars, &mut rng);
            let placement = group.placement.clone();
            conns.push(ConnPlan {
                id,
                group: gi as u16,
                user,
                token: slot,
                start,
                placement,
                barrier,
                actions,
            });
        }
    }
    let tokens = minter.tokens;
    conns.sort_by_key(|c| (c.start, c.id));
    Plan {
        scenario: scenario.name.clone(),
        scenario_hash: scenario.hash.clone(),
        seed,
        duration: scenario.duration,
        auth: AuthPlan::from_spec(&scenario.auth),
        oracles: scenario.oracles.clone(),
        limits: scenario.limits,
        groups: scenario.groups.iter().map(|g| g.name.clone()).collect(),
        tokens,
        barriers,
        conns,
    }
}

/// Token slots and the RNG that names them (`jti`s come from stream 0).
struct Minter<'a> {
    rng: ChaCha8Rng,
    sub: &'a str,
    tokens: Vec<TokenPlan>,
}

impl Minter<'_> {
    /// The token slot of each connection of `group`, in connection order (user-major).
    fn slots_for(&mut self, group: &Group) -> Vec<u32> {
        let per_user = group.connections_per_user;
        let n = group.users * per_user;
        let first = self.tokens.len();
        let slots = match group.token {
            TokenReuse::PerConnection => (0..n).map(|i| self.mint(i / per_user, group)).collect(),
            TokenReuse::PerUser => {
                let users: Vec<u32> = (0..group.users).map(|u| self.mint(u, group)).collect();
                (0..n).map(|i| users[(i / per_user) as usize]).collect()
            }
            TokenReuse::Shared { k } => {
                let k = k.max(1);
                let mut slots = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let slot = if i % k == 0 {
                        self.mint(i / per_user, group)
                    } else {
                        slots[(i - i % k) as usize]
                    };
                    slots.push(slot);
                }
                slots
            }
            TokenReuse::CrossUser => {
                let users: Vec<u32> = (0..group.users).map(|u| self.mint(u, group)).collect();
                (0..n)
                    .map(|i| users[((i / per_user + 1) % group.users) as usize])
                    .collect()
            }
        };
        self.apply_forge(group.forge.as_ref(), first);
        slots
    }

    fn mint(&mut self, user: u32, group: &Group) -> u32 {
        let sub = template::expand_sub(self.sub, user, &group.name);
        let jti = format!("{:016x}", self.rng.random::<u64>());
        self.tokens.push(TokenPlan {
            sub,
            jti,
            forge: None,
        });
        (self.tokens.len() - 1) as u32
    }

    /// Marks the group's slots as forged; the catalogue is dealt round-robin.
    fn apply_forge(&mut self, forge: Option<&Forge>, first: usize) {
        let Some(forge) = forge else { return };
        for (j, token) in self.tokens[first..].iter_mut().enumerate() {
            token.forge = Some(match forge {
                Forge::Catalogue => {
                    let names = crate::auth::catalogue::NAMES;
                    Forge::Bad {
                        name: names[j % names.len()].to_string(),
                    }
                }
                other => other.clone(),
            });
        }
    }
}

/// Each connection draws from its own stream, so adding or dropping one connection
/// leaves every other connection's draws unchanged.
fn conn_rng(seed: u64, conn: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(conn) + 1);
    rng
}

fn expand_steps(steps: &[Step], vars: &template::Vars<'_>, rng: &mut ChaCha8Rng) -> Vec<Action> {
    let mut out = Vec::new();
    let steps = match steps.first() {
        Some(Step::AbortHandshake { after, how }) => {
            out.push(Action::AbortHandshake {
                after: sample(after, rng),
                rst: *how == AbortHow::Rst,
            });
            &steps[1..]
        }
        _ => {
            out.push(Action::Connect);
            steps
        }
    };
    let mut expander = StepExpander {
        vars,
        rng,
        run: 0,
        last_by_field: BTreeMap::new(),
        paced: false,
    };
    expander.push_all(steps, &mut out);
    out
}

struct StepExpander<'a, 'v> {
    vars: &'a template::Vars<'v>,
    rng: &'a mut ChaCha8Rng,
    /// 1-based counter of sends, the `{{run}}` placeholder.
    run: u32,
    /// Each top-level field's value in the latest send that had it: an expectation
    /// correlates with the latest request carrying its field, even if a send without that
    /// field came in between.
    last_by_field: BTreeMap<String, String>,
    /// Inside a paced repeat (open model).
    paced: bool,
}

impl StepExpander<'_, '_> {
    fn push_all(&mut self, steps: &[Step], out: &mut Vec<Action>) {
        for step in steps {
            self.push(step, out);
        }
    }

    fn push(&mut self, step: &Step, out: &mut Vec<Action>) {
        match step {
            Step::Send { template } => {
                self.run += 1;
                let message = expand(template, self.vars, self.run, self.rng);
                if let Some(fields) = message.as_object() {
                    for (k, v) in fields {
                        self.last_by_field.insert(k.clone(), json_key(v));
                    }
                }
                out.push(Action::Send { message });
            }
            Step::Expect(expect) => {
                let mut plan = self.expect(expect);
                // Paced (open model): the schedule goes on whatever the server does.
                plan.wait &= !self.paced;
                out.push(Action::Expect(plan));
            }
            Step::Think { dist } => out.push(Action::Think(sample(dist, self.rng))),
            Step::PauseReads { dist } => out.push(Action::PauseReads(sample(dist, self.rng))),
            Step::Repeat {
                times,
                steps,
                every: None,
            } => {
                for _ in 0..*times {
                    self.push_all(steps, out);
                }
            }
            Step::Repeat {
                times,
                steps,
                every: Some(every),
            } => {
                let outer = std::mem::replace(&mut self.paced, true);
                out.push(Action::PaceStart);
                for i in 0..*times {
                    out.push(Action::PaceAt(*every * i));
                    self.push_all(steps, out);
                }
                self.paced = outer;
            }
            Step::Close { code } => out.push(Action::Close { code: *code }),
            // Validation only allows it first, where `expand_steps` turned it into the connect.
            Step::AbortHandshake { .. } => {}
            Step::Reconnect { after, backoff } => out.push(Action::Reconnect {
                after: sample(after, self.rng),
                backoff: backoff.clone(),
            }),
        }
    }

    fn expect(&self, expect: &Expect) -> ExpectPlan {
        let correlate = expect.correlate.as_ref().map(|field| {
            let value = self.last_by_field.get(field).cloned().unwrap_or_default();
            (field.clone(), value)
        });
        ExpectPlan {
            pattern: expect.pattern.clone(),
            correlate,
            within: expect.within,
            wait: expect.wait,
        }
    }
}

/// The string form of a correlation value: strings as they are, anything else as JSON.
pub fn json_key(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
