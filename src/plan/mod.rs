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

use crate::model::{
    AbortHow, Action, Arrival, AuthPlan, BadToken, BarrierPlan, ConnPlan, Expect, ExpectPlan,
    Forge, Group, Plan, RendezvousPlan, Scenario, Step, TokenPlan, TokenReuse,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

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

/// Compiles a scenario into a plan. Pure: the same inputs give the same plan, byte for byte.
pub fn build(scenario: &Scenario, seed: u64) -> Plan {
    let mut minter = Minter {
        rng: ChaCha8Rng::seed_from_u64(seed),
        sub: &scenario.auth.sub,
        tokens: Vec::new(),
    };
    let mut conns = Vec::new();
    let mut barriers = Vec::new();
    let mut rendezvous: Vec<RendezvousPlan> = Vec::new();
    for (gi, group) in scenario.groups.iter().enumerate() {
        // Every connection of a group expands the same steps, so the k-th rendezvous of
        // each script is the same point: global index `first_point + k`.
        let first_point = rendezvous.len() as u32;
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
            let (actions, points) = expand_steps(&group.steps, &vars, &mut rng, first_point);
            if index == 0 {
                for (step, (count, timeout)) in points.into_iter().enumerate() {
                    rendezvous.push(RendezvousPlan {
                        group: gi as u16,
                        step: step as u32,
                        count: count.unwrap_or(n).min(n),
                        timeout,
                    });
                }
            }
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
        rendezvous,
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
                    let entries = BadToken::all().count();
                    Forge::Bad {
                        name: BadToken::all()
                            .nth(j % entries)
                            .unwrap_or(BadToken::Garbage),
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

/// A rendezvous as the scenario wrote it: its count (`None`: the whole group) and timeout.
type PointSpec = (Option<u32>, std::time::Duration);

/// The connection's actions, and its rendezvous points in order (numbered from
/// `first_point` in the actions).
fn expand_steps(
    steps: &[Step],
    vars: &template::Vars<'_>,
    rng: &mut ChaCha8Rng,
    first_point: u32,
) -> (Vec<Action>, Vec<PointSpec>) {
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
        first_point,
        points: Vec::new(),
    };
    expander.push_all(steps, &mut out);
    (out, expander.points)
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
    /// The global index of this group's first rendezvous point.
    first_point: u32,
    /// The rendezvous steps met so far, in order.
    points: Vec<PointSpec>,
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
            Step::Rendezvous { count, timeout } => {
                let point = self.first_point + self.points.len() as u32;
                self.points.push((*count, *timeout));
                out.push(Action::Rendezvous { point });
            }
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
