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
    Expect, Limits, OracleSpec, Placement, Scenario, SecretSource, Step, TokenReuse,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// Connections, sorted by start offset (ties by id).
    pub conns: Vec<ConnPlan>,
}

/// How tokens are minted and presented; the secret is resolved at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthPlan {
    pub secret: SecretSource,
    #[serde(with = "duration_us")]
    pub ttl: Duration,
    pub placement: Placement,
}

/// One token: connections with the same slot present the same JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPlan {
    pub sub: String,
    pub jti: String,
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
    pub actions: Vec<Action>,
}

/// One expanded step. Durations are already sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Connect,
    Send {
        message: serde_json::Value,
    },
    Expect(ExpectPlan),
    Think(#[serde(with = "duration_us")] Duration),
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
    let mut token_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tokens = Vec::new();
    let mut conns = Vec::new();
    for (gi, group) in scenario.groups.iter().enumerate() {
        let offsets = arrival::offsets(&group.arrival, group.users * group.connections_per_user);
        for user in 0..group.users {
            let user_slot = new_token(
                &mut tokens,
                &mut token_rng,
                &scenario.auth.sub,
                user,
                &group.name,
            );
            for c in 0..group.connections_per_user {
                let id = conns.len() as u32;
                let slot = match group.token {
                    TokenReuse::PerUser => user_slot,
                    TokenReuse::PerConnection if c == 0 => user_slot,
                    TokenReuse::PerConnection => new_token(
                        &mut tokens,
                        &mut token_rng,
                        &scenario.auth.sub,
                        user,
                        &group.name,
                    ),
                };
                let mut rng = conn_rng(seed, id);
                let index = (user * group.connections_per_user + c) as usize;
                let start = offsets.get(index).copied().unwrap_or_default()
                    + sample(&group.jitter, &mut rng);
                let vars = template::Vars {
                    user,
                    conn: id,
                    group: &group.name,
                    sub: &tokens[slot as usize].sub,
                };
                let actions = expand_steps(&group.steps, &vars, &mut rng);
                conns.push(ConnPlan {
                    id,
                    group: gi as u16,
                    user,
                    token: slot,
                    start,
                    actions,
                });
            }
        }
    }
    conns.sort_by_key(|c| (c.start, c.id));
    Plan {
        scenario: scenario.name.clone(),
        scenario_hash: scenario.hash.clone(),
        seed,
        duration: scenario.duration,
        auth: AuthPlan {
            secret: scenario.auth.secret.clone(),
            ttl: scenario.auth.ttl,
            placement: scenario.auth.placement.clone(),
        },
        oracles: scenario.oracles.clone(),
        limits: scenario.limits,
        groups: scenario.groups.iter().map(|g| g.name.clone()).collect(),
        tokens,
        conns,
    }
}

fn new_token(
    tokens: &mut Vec<TokenPlan>,
    rng: &mut ChaCha8Rng,
    sub: &str,
    user: u32,
    group: &str,
) -> u32 {
    let sub = template::expand_sub(sub, user, group);
    let jti = format!("{:016x}", rng.random::<u64>());
    tokens.push(TokenPlan { sub, jti });
    (tokens.len() - 1) as u32
}

/// Each connection draws from its own stream, so adding or dropping one connection
/// leaves every other connection's draws unchanged.
fn conn_rng(seed: u64, conn: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(conn) + 1);
    rng
}

fn expand_steps(steps: &[Step], vars: &template::Vars<'_>, rng: &mut ChaCha8Rng) -> Vec<Action> {
    let mut out = vec![Action::Connect];
    let mut expander = StepExpander {
        vars,
        rng,
        run: 0,
        last_sent: None,
    };
    expander.push_all(steps, &mut out);
    out
}

struct StepExpander<'a, 'v> {
    vars: &'a template::Vars<'v>,
    rng: &'a mut ChaCha8Rng,
    /// 1-based counter of sends, the `{{run}}` placeholder.
    run: u32,
    last_sent: Option<serde_json::Value>,
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
                self.last_sent = Some(message.clone());
                out.push(Action::Send { message });
            }
            Step::Expect(expect) => out.push(Action::Expect(self.expect(expect))),
            Step::Think { dist } => out.push(Action::Think(sample(dist, self.rng))),
            Step::PauseReads { dist } => out.push(Action::PauseReads(sample(dist, self.rng))),
            Step::Repeat { times, steps } => {
                for _ in 0..*times {
                    self.push_all(steps, out);
                }
            }
            Step::Close { code } => out.push(Action::Close { code: *code }),
            Step::Reconnect { after, backoff } => out.push(Action::Reconnect {
                after: sample(after, self.rng),
                backoff: backoff.clone(),
            }),
        }
    }

    fn expect(&self, expect: &Expect) -> ExpectPlan {
        let correlate = expect.correlate.as_ref().map(|field| {
            let value = self
                .last_sent
                .as_ref()
                .and_then(|m| m.get(field))
                .map(json_key)
                .unwrap_or_default();
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
