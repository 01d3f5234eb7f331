//! Scenario + seed → [`Plan`]: every connection's user, token slot and start offset, and
//! each group's script, stored once (repeats stay loops; [`Cursor`] walks them).
//!
//! `build` is a pure function. Every random choice comes from ChaCha streams, never from
//! `StdRng`: ChaCha output is specified, so a plan rebuilt by a later version from the same
//! (scenario, seed) is the same plan. Tokens draw from the seed's stream 0; everything a
//! connection draws (its start jitter, think times, `{{random}}`, ...) comes from
//! [`draw_rng`], keyed by (seed, connection, step path, iteration), at plan time for the
//! jitter and as the connection walks its script for the rest.

mod arrival;
mod cursor;
mod finish;
mod sample;
mod template;

pub use cursor::{draw_rng, expand_conn, Cursor, Next, PatternKey, SendTemplates, JITTER_SITE};
pub use finish::{
    cannot_finish, expiring, least_time, thinks_past_idle, Expiring, IdleThink, Late,
    LEAST_LIFETIME_LOSS,
};
pub use sample::sample;

pub use template::{expand, Vars};

use crate::model::{
    planned_jti, script_rendezvous, Arrival, AuthPlan, BadToken, BarrierPlan, ConnPlan, Forge,
    Group, Plan, RendezvousPlan, Scenario, TokenPlan, TokenReuse, RUN_SUFFIX,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
        group: group as u32,
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
    let mut rendezvous = Vec::new();
    for (gi, group) in scenario.groups.iter().enumerate() {
        let n = group.users.saturating_mul(group.connections_per_user);
        let offsets = arrival::offsets(&group.arrival, n);
        let slots = minter.slots_for(group);
        let barrier = collide_barrier(&mut barriers, gi, &group.arrival, n);
        // Every connection of a group walks the same script, so its k-th rendezvous step
        // is one point for all of them (and each iteration of a repeat around it, one
        // meeting of that point: the cursor says which).
        for (step, rv) in script_rendezvous(&group.steps).into_iter().enumerate() {
            rendezvous.push(RendezvousPlan {
                group: gi as u32,
                step: step as u32,
                count: rv.count.unwrap_or(n).min(n),
                timeout: rv.timeout,
                meetings: rv.meetings,
            });
        }
        for index in 0..n {
            let id = conns.len() as u32;
            let user = index / group.connections_per_user;
            let slot = slots[index as usize];
            let start = match barrier {
                // Pre-open ahead of the release; the barrier, not jitter, sets the timing.
                Some(b) => barriers[b as usize].release - barriers[b as usize].lead,
                None => {
                    offsets.get(index as usize).copied().unwrap_or_default()
                        + sample(&group.jitter, &mut draw_rng(seed, id, JITTER_SITE, 0))
                }
            };
            let placement = group.placement.clone();
            conns.push(ConnPlan {
                id,
                group: gi as u32,
                user,
                token: slot,
                start,
                placement,
                barrier,
                actions: Vec::new(),
            });
        }
    }
    let tokens = minter.tokens;
    conns.sort_by_key(|c| (c.start, c.id));
    Plan {
        scenario: scenario.name.clone(),
        scenario_hash: scenario.hash.clone(),
        scenario_content_hash: scenario.content_hash.clone(),
        seed,
        duration: scenario.duration,
        auth: AuthPlan::from_spec(&scenario.auth),
        oracles: scenario.oracles.clone(),
        limits: scenario.limits,
        groups: scenario.groups.iter().map(|g| g.name.clone()).collect(),
        tokens,
        barriers,
        rendezvous,
        scripts: scenario.groups.iter().map(|g| g.steps.clone()).collect(),
        group_feeds: if scenario.groups.iter().any(|g| g.feeder.is_some()) {
            scenario.groups.iter().map(|g| g.feeder.clone()).collect()
        } else {
            Vec::new()
        },
        group_subprotocols: if scenario.groups.iter().any(|g| !g.subprotocols.is_empty()) {
            scenario
                .groups
                .iter()
                .map(|g| g.subprotocols.clone())
                .collect()
        } else {
            Vec::new()
        },
        group_headers: if scenario.groups.iter().any(|g| !g.headers.is_empty()) {
            scenario.groups.iter().map(|g| g.headers.clone()).collect()
        } else {
            Vec::new()
        },
        answers: scenario.answers.clone(),
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
        let n = group.users.saturating_mul(per_user);
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

/// Expands the placeholders that draw nothing and need no send counter (`{{user}}`,
/// `{{conn}}`, `{{group}}`, `{{sub}}`) in `template`: what an upgrade header or a
/// `first_message` holds, filled when the connection dials. Others stay as written.
pub fn expand_fixed(template: &serde_json::Value, vars: &Vars<'_>) -> serde_json::Value {
    expand(template, vars, 0, &mut NoRng)
}

/// [`expand_fixed`] for text.
pub fn expand_fixed_text(template: &str, vars: &Vars<'_>) -> String {
    template::expand_text(template, vars, 0, &mut NoRng)
}

/// Target URL `url` (as dialled) with the connection's placeholders filled in its path and
/// query, each value percent-encoded: `ws://h/ocpp/CP{{user}}` → `ws://h/ocpp/CP7`. The
/// scheme, host and port are kept as they are (they take no placeholders).
pub fn expand_fixed_url(url: &str, vars: &Vars<'_>) -> String {
    let at = crate::model::url::path_start(url).unwrap_or(url.len());
    let mut out = url[..at].to_string();
    out.push_str(&template::expand_url_tail(&url[at..], vars));
    out
}

/// Target URL `url` with every placeholder of its path and query written `0`: the shape
/// every connection dials, to check once that it parses.
pub fn url_with_zeros(url: &str) -> String {
    let at = crate::model::url::path_start(url).unwrap_or(url.len());
    let mut out = url[..at].to_string();
    out.push_str(&template::expand_as_zero(&url[at..]));
    out
}

/// Patterns, field tests, upgrade headers and `first_message` take only the placeholders
/// that draw nothing (validation refuses `random` and `uuid` there): this stands in for a
/// random stream that is never read, so expanding them draws from no step's stream.
struct NoRng;

impl rand::RngCore for NoRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

/// The string form of a correlation value: strings as they are, anything else as JSON.
pub fn json_key(value: &serde_json::Value) -> String {
    crate::model::path::key_text(value)
}

#[cfg(test)]
mod tests;

/// A suffix no other execution of any plan shares: the time in µs, this process's id and a
/// count of the suffixes it made, in hex.
pub fn run_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static MADE: AtomicU64 = AtomicU64::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    format!("{stamp:x}{:x}{n:x}", std::process::id())
}

/// A copy of `plan` whose token `jti`s are unique to this execution: each planned `jti`
/// ([`planned_jti`]), [`RUN_SUFFIX`], a [`run_nonce`]. Shared tokens stay shared (one slot,
/// one `jti`). Two runs of one plan (two CI jobs at once, a replay, the next `--times`
/// seed) then never present the same `jti`: a server that allows one session per token,
/// or refuses a `jti` it has seen (replay protection, RFC 7519 section 4.1.7), judges each
/// run on its own. A token read from a file or a login keeps its own `jti` (the run names
/// it by what the token carries).
pub fn fresh_jtis(plan: &Plan) -> Plan {
    let nonce = run_nonce();
    let mut fresh = plan.clone();
    for token in &mut fresh.tokens {
        token.jti = format!("{}{RUN_SUFFIX}{nonce}", planned_jti(&token.jti));
    }
    fresh
}
