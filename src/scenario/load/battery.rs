//! `[battery]`: one file that names the target, the token settings and the request
//! message, expanded into one generated scenario per race family and pressure level.
//!
//! The expansion is textual on purpose: each level's scenario is the user's file (its
//! `[battery]` lines commented out, every other line where it was) followed by generated
//! `[[group]]` and `[hunt]` tables, loaded by the ordinary loader. So every problem in the
//! user's own tables keeps its file:line:column, the generated groups go through the same
//! validation as hand-written ones, and `[auth]`, `[limits]` and `[oracles]` mean exactly
//! what they mean in any scenario.

use super::walk::{Ctx, Fields, Node};
use super::{load_in, load_in_checked, ScenarioError};
use crate::model::Scenario;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeTable, DeValue};

const BATTERY_KEYS: &[&str] = &[
    "request",
    "ack",
    "reply",
    "correlate",
    "identity",
    "placements",
    "families",
    "within",
];
const PLACEMENTS: &[&str] = &["header", "query", "subprotocol"];
/// A battery generates these itself; a file that also writes them is refused.
const GENERATED: &[&str] = &["group", "hunt"];
/// How long a reconnect after an aborted handshake waits beyond the liveness grace, so
/// the server's cleanup deadline has passed.
const AFTER_GRACE: Duration = Duration::from_millis(200);
const DEFAULT_GRACE: Duration = Duration::from_millis(500);
/// How long a reply may take by default (`[battery] within`).
const DEFAULT_WITHIN: Duration = Duration::from_secs(2);

/// One race family of the battery, in the order [`Family::ALL`] runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Connections sharing one token collide on the handshake.
    SameToken,
    /// Different users' handshakes collide.
    DifferentUsers,
    /// The request goes out right after the 101, before the auth ack.
    EarlySend,
    /// A message rendezvous releases every connection's request together, at rising scale.
    Rendezvous,
    /// Close, then reconnect with the same token at once.
    Reconnect,
    /// Handshakes reset before the 101, then the same token again; health probed between
    /// levels.
    Abort,
    /// The bad-token catalogue and time-shifted tokens beside valid ones.
    BadTokens,
}

impl Family {
    /// Every family, in the order the battery runs them.
    pub const ALL: [Family; 7] = [
        Family::SameToken,
        Family::DifferentUsers,
        Family::EarlySend,
        Family::Rendezvous,
        Family::Reconnect,
        Family::Abort,
        Family::BadTokens,
    ];

    /// Its name in `[battery] families` and in output.
    pub fn name(self) -> &'static str {
        match self {
            Family::SameToken => "same-token",
            Family::DifferentUsers => "different-users",
            Family::EarlySend => "early-send",
            Family::Rendezvous => "rendezvous",
            Family::Reconnect => "reconnect",
            Family::Abort => "abort",
            Family::BadTokens => "bad-tokens",
        }
    }

    /// What the family tries, in one line.
    pub fn describe(self) -> &'static str {
        match self {
            Family::SameToken => "connections sharing a token collide on the handshake",
            Family::DifferentUsers => "different users' handshakes collide",
            Family::EarlySend => "the request is sent before the auth ack",
            Family::Rendezvous => "a message rendezvous releases every request together",
            Family::Reconnect => "close, then reconnect with the same token at once",
            Family::Abort => "handshakes reset before the 101, then the token again",
            Family::BadTokens => "the bad-token catalogue beside valid tokens",
        }
    }
}

/// One pressure level of a family: a generated scenario and what it puts under load.
#[derive(Debug, Clone)]
pub struct Level {
    /// `users 2-4 x 2-3 connections, collide`, for output.
    pub label: String,
    /// The most connections one round of this level opens.
    pub max_connections: u64,
    /// The generated scenario; its name is `<battery name>-<family>`.
    pub scenario: Scenario,
}

/// A loaded `[battery]` file, ready to expand family by family.
#[derive(Debug, Clone)]
pub struct Battery {
    parsed: Parsed,
    /// The families to run, in order.
    pub families: Vec<Family>,
    /// One fresh valid connection doing the first exchange: the health probe, and the
    /// scenario the target, auth and seed are read from.
    pub probe: Scenario,
    /// Whether the file's `[oracles]` declares `exclusive`: then the `same-token` family
    /// judges exclusivity as declared, without calibrating the target's policy first.
    pub declared_exclusive: bool,
    /// What a run in this environment would lack (an `[auth]` key's `{ env = "NAME" }`
    /// with the variable unset or empty), at the key in the file: `hunt` refuses to start,
    /// `validate` warns (as for a scenario, [`super::load_file_checked`]).
    pub needs: Vec<super::Problem>,
}

/// What the `[battery]` table and the file around it say.
#[derive(Debug, Clone)]
struct Parsed {
    /// The file as given, for problems.
    origin: String,
    base: Option<PathBuf>,
    /// The user's text with the `[battery]` lines commented out.
    text: String,
    /// The request message, as written (an inline table or a string).
    request: String,
    ack: Option<String>,
    reply: Option<String>,
    correlate: Option<String>,
    identity: Option<String>,
    placements: Vec<String>,
    families: Vec<Family>,
    /// How long the reply to one request may take.
    within: Duration,
    /// The liveness grace the file's `[oracles]` give (the abort family waits it out).
    grace: Duration,
}

/// Whether `text` has a top-level `battery` key (syntax errors: no, the ordinary loader
/// reports them).
pub fn is_battery(text: &str) -> bool {
    DeTable::parse(text).is_ok_and(|doc| doc.get_ref().contains_key("battery"))
}

/// Reads `path`; `Ok(None)` when it has no `[battery]` (an ordinary scenario).
pub fn load_battery_file(path: &Path) -> Result<Option<Battery>, ScenarioError> {
    super::ScenarioFile::read(path)?.battery()
}

/// [`load_battery_file`] for text; relative paths resolve against the working directory.
pub fn load_battery_str(text: &str, origin: &str) -> Result<Option<Battery>, ScenarioError> {
    load_battery_in(text, origin, None)
}

/// [`load_battery_file`] for a file's `text` already read; `origin` names it in problems,
/// relative paths resolve against `base` (the working directory when `None`).
pub(in crate::scenario) fn load_battery_in(
    text: &str,
    origin: &str,
    base: Option<PathBuf>,
) -> Result<Option<Battery>, ScenarioError> {
    let Ok(doc) = DeTable::parse(text) else {
        return Ok(None);
    };
    let Some((key, node)) = doc.get_ref().get_key_value("battery") else {
        return Ok(None);
    };
    let mut cx = Ctx::new(origin, text);
    for name in GENERATED {
        if let Some((k, _)) = doc.get_ref().get_key_value(*name) {
            cx.report(
                k.span(),
                format!("a [battery] generates its own {name}s per family; remove this table"),
            );
        }
    }
    let mut battery = fields(&mut cx, node, text);
    let header_line = text[..key.span().start].matches('\n').count();
    match comment_out(text, header_line) {
        Some(commented) => battery.text = commented,
        None => cx.report(
            key.span(),
            "write the battery as a [battery] table (not an inline `battery = {...}`)",
        ),
    }
    let problems = cx.into_problems();
    if !problems.is_empty() {
        return Err(ScenarioError::Invalid { problems });
    }
    battery.origin = origin.to_string();
    battery.base = base;
    let probe_text = battery.compose("probe", &battery.probe_group());
    // The user's lines come first in the composed text, so positions are the file's.
    let (probe, needs) = load_in_checked(&probe_text, origin, battery.base.clone(), &env_var)?;
    battery.grace = probe
        .oracles
        .session
        .liveness
        .map_or(DEFAULT_GRACE, |l| l.grace);
    let declared_exclusive = doc
        .get_ref()
        .get("oracles")
        .and_then(|o| o.get_ref().as_table())
        .is_some_and(|t| t.contains_key("exclusive"));
    Ok(Some(Battery {
        families: battery.families.clone(),
        parsed: battery,
        probe,
        declared_exclusive,
        needs,
    }))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads the `[battery]` table's fields (problems recorded in `cx`).
fn fields(cx: &mut Ctx<'_>, node: &Node<'_>, text: &str) -> Parsed {
    let mut battery = Parsed {
        origin: String::new(),
        base: None,
        text: String::new(),
        request: String::new(),
        ack: None,
        reply: None,
        correlate: None,
        identity: None,
        placements: Vec::new(),
        families: Family::ALL.to_vec(),
        grace: DEFAULT_GRACE,
        within: DEFAULT_WITHIN,
    };
    let Some(f) = Fields::section(cx, Some(node), "[battery]", BATTERY_KEYS) else {
        return battery;
    };
    if let Some(request) = f.require(cx, "request") {
        let raw = text.get(request.span()).unwrap_or_default().trim();
        match request.get_ref() {
            DeValue::Table(_) if raw.starts_with('{') => battery.request = raw.to_string(),
            DeValue::String(_) => battery.request = raw.to_string(),
            _ => cx.report(
                request.span(),
                "battery.request: expected the message inline: a table `{ type = ... }` or a string",
            ),
        }
    }
    battery.ack = f.opt_str(cx, "ack");
    battery.reply = f.opt_str(cx, "reply");
    battery.correlate = f.opt_str(cx, "correlate");
    battery.identity = f.opt_str(cx, "identity");
    battery.within = f.positive_duration_or(cx, "within", DEFAULT_WITHIN);
    battery.placements = names(cx, f.get("placements"), "battery.placements", PLACEMENTS);
    if let Some(node) = f.get("families") {
        let known: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        let chosen = names(cx, Some(node), "battery.families", &known);
        battery.families = Family::ALL
            .into_iter()
            .filter(|f| chosen.iter().any(|c| c == f.name()))
            .collect();
        // An empty list, not one whose every name was wrong (each of those is reported).
        let listed = node.get_ref().as_array().is_some_and(|a| !a.is_empty());
        if battery.families.is_empty() && !listed {
            cx.report(node.span(), "battery.families: name at least one family");
        }
    }
    battery
}

/// An array of names, each one of `known`.
fn names(cx: &mut Ctx<'_>, node: Option<&Node<'_>>, key: &str, known: &[&str]) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Some(items) = cx.array(key, node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(name) = cx.string(key, item) else {
            continue;
        };
        if known.contains(&name) {
            out.push(name.to_string());
        } else {
            let hint = crate::model::words::did_you_mean(name, known.iter().copied());
            cx.report(
                item.span(),
                format!(
                    "{key}: unknown {name:?}; expected one of: {}{hint}",
                    known.join(", ")
                ),
            );
        }
    }
    out
}

/// `text` with the lines of the `[battery]` table starting at `header_line` (0-based)
/// commented out, up to the next table header; `None` when that line is no `[battery]`
/// header.
fn comment_out(text: &str, header_line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = lines.get(header_line)?.trim_start();
    if !header.starts_with('[') {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut inside = false;
    for (i, line) in lines.iter().enumerate() {
        if i == header_line {
            inside = true;
        } else if inside && is_header(line) {
            inside = false;
        }
        if inside {
            out.push_str("# ");
        }
        out.push_str(line);
    }
    Some(out)
}

/// A table header line: `[name]` or `[[name]]` (a line inside a multi-line array starts
/// with a value, a `]` or a comment instead).
fn is_header(line: &str) -> bool {
    let line = line.trim_start();
    let rest = line.strip_prefix("[[").or_else(|| line.strip_prefix('['));
    rest.and_then(|r| r.trim_start().chars().next())
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '"' || c == '\'')
}

/// A TOML basic string for `s`.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn ms(d: Duration) -> String {
    format!("\"{}ms\"", d.as_millis())
}

/// One level before it is loaded.
struct Spec {
    label: String,
    max_connections: u64,
    text: String,
}

impl Battery {
    /// The family's levels, lowest pressure first, each a loaded scenario named
    /// `<battery name>-<family>`. Empty when the battery lacks what the family needs (a
    /// reply pattern to judge a lost or dropped answer). Errors are problems in the
    /// generated scenario (a request template the loader refuses, say).
    pub fn levels(&self, family: Family) -> Result<Vec<Level>, ScenarioError> {
        let p = &self.parsed;
        let specs = match family {
            Family::SameToken => p.collide(true),
            Family::DifferentUsers => p.collide(false),
            Family::EarlySend => p.early_send(),
            Family::Rendezvous => p.rendezvous(),
            Family::Reconnect => p.reconnect(),
            Family::Abort => p.abort(),
            Family::BadTokens => p.bad_tokens(),
        };
        let origin = format!("{} (battery family {})", p.origin, family.name());
        specs
            .into_iter()
            .map(|spec| {
                let text = p.compose(family.name(), &spec.text);
                let mut scenario = load_in(&text, &origin, p.base.clone(), &env_var)?;
                scenario.name = format!("{}-{}", self.probe.name, family.name());
                // Learned invariants (calibrated once by the runner on the probe plan) are
                // checked beside this declared identity, never instead of it.
                if scenario.oracles.identity.is_none() {
                    scenario.oracles.identity = p.identity.clone();
                }
                Ok(Level {
                    label: spec.label,
                    max_connections: spec.max_connections,
                    scenario,
                })
            })
            .collect()
    }
}

impl Battery {
    /// The `same-token` family's calibration: one user's two connections presenting the
    /// same token one after the other, not racing (the second opens 150 ms after the
    /// first, each serves a request once the other is accepted, both held meanwhile). A run of it that
    /// breaks exclusivity shows the target serves concurrent sessions of one token as its
    /// policy. Named `<battery name>-same-token-calibration`.
    pub fn sessions_calibration(&self) -> Result<Scenario, ScenarioError> {
        let p = &self.parsed;
        // Each connection is served once the other was accepted (the exclusivity
        // oracle's causal witness): greet, wait past the other's start (150 ms apart),
        // the exchange, then hold while the other does its own.
        let mut steps = p.greet("2s");
        steps.push("{ think = \"600ms\" }".to_string());
        steps.extend(p.exchange(&p.within_text()));
        steps.push("{ think = \"600ms\" }".to_string());
        steps.push("{ close = 1000 }".to_string());
        let extra = "connections_per_user = 2\ntoken = \"per-user\"\n";
        let text = group("holders", 1, extra, "{ ramp = \"300ms\" }", &steps);
        let text = p.compose("same-token calibration", &text);
        let origin = format!("{} (battery calibration)", p.origin);
        let mut scenario = load_in(&text, &origin, p.base.clone(), &env_var)?;
        scenario.name = format!("{}-same-token-calibration", self.probe.name);
        Ok(scenario)
    }
}

impl Parsed {
    /// The user's text followed by `generated`.
    fn compose(&self, family: &str, generated: &str) -> String {
        format!(
            "{}\n\n# ---- generated by the battery: family {family} ----\n{generated}",
            self.text.trim_end()
        )
    }

    /// `[battery] within` as a duration string.
    fn within_text(&self) -> String {
        format!("{}ms", self.within.as_millis())
    }

    /// The first exchange of the protocol: the ack if there is one, else the request and
    /// its reply.
    fn greet(&self, within: &str) -> Vec<String> {
        match &self.ack {
            Some(ack) => vec![format!(
                "{{ expect = {}, within = \"{within}\" }}",
                quote(ack)
            )],
            None => self.exchange(within),
        }
    }

    /// The request, then its reply when the battery knows what it looks like.
    fn exchange(&self, within: &str) -> Vec<String> {
        let mut steps = vec![format!("{{ send = {} }}", self.request)];
        // Without `[battery] reply` no reply is awaited here; the learned reply invariant
        // (what each request kind got during calibration) still judges the answers.
        if let Some(reply) = &self.reply {
            let correlate = self
                .correlate
                .as_ref()
                .map(|c| format!(", correlate = {}", quote(c)))
                .unwrap_or_default();
            steps.push(format!(
                "{{ expect = {}{correlate}, within = \"{within}\" }}",
                quote(reply)
            ));
        }
        steps
    }

    /// Greet, the exchange, a clean close.
    fn session(&self) -> Vec<String> {
        let mut steps = self.greet("2s");
        if self.ack.is_some() {
            steps.extend(self.exchange(&self.within_text()));
        }
        steps.push("{ close = 1000 }".to_string());
        steps
    }

    fn probe_group(&self) -> String {
        group("probe", 1, "", "{ ramp = \"0ms\" }", &self.session())
    }

    fn collide(&self, shared_token: bool) -> Vec<Spec> {
        let steps = self.session();
        // (users range, connections per token range, rounds) per level.
        type CollideLevel = ((u32, u32), (u32, u32), u32);
        let levels: &[CollideLevel] = if shared_token {
            &[((2, 4), (2, 3), 8), ((4, 8), (2, 4), 6)]
        } else {
            &[((2, 8), (1, 1), 8), ((8, 24), (1, 1), 6)]
        };
        levels
            .iter()
            .map(|&((lo, hi), (clo, chi), rounds)| {
                let token = if shared_token {
                    format!("connections_per_user = {clo}\ntoken = \"per-user\"\n")
                } else {
                    String::new()
                };
                let mut text = group("racers", lo, &token, "\"collide\"", &steps);
                text.push_str(&format!(
                    "\n[hunt]\nrounds = {rounds}\nusers = [{lo}, {hi}]\n"
                ));
                if shared_token {
                    text.push_str(&format!("connections_per_user = [{clo}, {chi}]\n"));
                }
                let label = if shared_token {
                    format!("users {lo}-{hi} x {clo}-{chi} connections per token, collide")
                } else {
                    format!("users {lo}-{hi}, collide")
                };
                Spec {
                    label,
                    max_connections: u64::from(hi * chi),
                    text,
                }
            })
            .collect()
    }

    fn early_send(&self) -> Vec<Spec> {
        if self.reply.is_none() {
            return Vec::new();
        }
        let mut steps = self.exchange(&self.within_text());
        steps.push("{ close = 1000 }".to_string());
        let mut text = group("eager", 4, "", "{ ramp = \"100ms\" }", &steps);
        text.push_str("\n[hunt]\nrounds = 8\nusers = [1, 6]\n");
        vec![Spec {
            label: "users 1-6, request right after the 101".to_string(),
            max_connections: 6,
            text,
        }]
    }

    fn rendezvous(&self) -> Vec<Spec> {
        if self.reply.is_none() {
            return Vec::new();
        }
        let meet = "{ rendezvous = { count = \"all\", timeout = \"5s\" } }".to_string();
        let mut steps = self.greet("5s");
        for _ in 0..2 {
            steps.push(meet.clone());
            steps.extend(self.exchange("5s"));
        }
        steps.push("{ close = 1000 }".to_string());
        [
            (8u32, 100u64, 3u32),
            (32, 200, 2),
            (128, 500, 2),
            (320, 1000, 2),
        ]
        .iter()
        .map(|&(users, ramp_ms, rounds)| {
            let arrival = format!("{{ ramp = \"{ramp_ms}ms\" }}");
            let mut text = group("burst", users, "", &arrival, &steps);
            text.push_str(&format!("\n[hunt]\nrounds = {rounds}\n"));
            Spec {
                label: format!("{users} users, 2 requests each released together"),
                max_connections: u64::from(users),
                text,
            }
        })
        .collect()
    }

    fn reconnect(&self) -> Vec<Spec> {
        let mut steps = self.greet("2s");
        steps.push("{ close = 1000 }".to_string());
        steps.push(
            "{ reconnect = { after = \"uniform(0ms, 2ms)\", backoff = [\"50ms\", \"100ms\", \"200ms\"] } }"
                .to_string(),
        );
        steps.extend(self.greet("2s"));
        steps.push("{ close = 1000 }".to_string());
        let mut text = group("flappers", 4, "", "{ ramp = \"50ms\" }", &steps);
        text.push_str("\n[hunt]\nrounds = 8\nusers = [1, 6]\n");
        vec![Spec {
            label: "users 1-6, reconnect 0-2 ms after a clean close".to_string(),
            max_connections: 6,
            text,
        }]
    }

    fn abort(&self) -> Vec<Spec> {
        let grace = self.grace;
        let mut steps = vec![
            "{ abort_handshake = { after = \"uniform(0ms, 2ms)\", how = \"rst\" } }".to_string(),
            format!(
                "{{ reconnect = {{ after = {} }} }}",
                ms(grace + AFTER_GRACE)
            ),
        ];
        steps.extend(self.greet("2s"));
        steps.push("{ close = 1000 }".to_string());
        // Rising counts in one round each: damage that accumulates (a leaked slot per
        // abort) then shows inside one round, whose plan alone reproduces it.
        [(2u32, 30u64, 2u32), (8, 50, 2), (64, 200, 1)]
            .iter()
            .map(|&(users, ramp_ms, rounds)| {
                let arrival = format!("{{ ramp = \"{ramp_ms}ms\" }}");
                let mut text = group("quitters", users, "", &arrival, &steps);
                text.push_str(&format!("\n[hunt]\nrounds = {rounds}\n"));
                Spec {
                    label: format!("{users} handshakes reset before the 101, then the token again"),
                    max_connections: u64::from(users) * 2,
                    text,
                }
            })
            .collect()
    }

    fn bad_tokens(&self) -> Vec<Spec> {
        let placements: Vec<Option<&str>> = if self.placements.is_empty() {
            vec![None]
        } else {
            self.placements.iter().map(|p| Some(p.as_str())).collect()
        };
        // A bad token's connection waits for the server's verdict without expecting
        // anything: an acceptance is the acceptance rule's to see (rejection hygiene
        // judges it), a refusal ends the wait, and a server that has not answered when
        // the wait ends (one waiting for an init message the `missing` entry never sends,
        // say) was not judged: nothing is owed by a connection that was never accepted.
        let mut refused = match self.ack {
            Some(_) => Vec::new(),
            // Without an ack the request is what draws an answer.
            None => vec![format!("{{ send = {} }}", self.request)],
        };
        refused.push("{ think = \"2s\" }".to_string());
        refused.push("{ close = 1000 }".to_string());
        let mut text = String::new();
        let mut connections = 0u64;
        for placement in placements {
            let (suffix, line) = match placement {
                Some(p) => (format!("-{p}"), format!("placement = \"{p}\"\n")),
                None => (String::new(), String::new()),
            };
            let kinds: [(&str, u32, &str); 4] = [
                ("catalogue", 26, "forge = \"catalogue\"\n"),
                ("expired", 4, "forge = { exp = \"-30s\" }\n"),
                ("future-nbf", 4, "forge = { nbf = \"+60s\" }\n"),
                ("valid", 4, ""),
            ];
            for (name, users, forge) in kinds {
                let steps = if name == "valid" {
                    self.session()
                } else {
                    refused.clone()
                };
                let extra = format!("{forge}{line}");
                text.push_str(&group(
                    &format!("{name}{suffix}"),
                    users,
                    &extra,
                    "{ ramp = \"300ms\" }",
                    &steps,
                ));
                connections += u64::from(users);
            }
        }
        text.push_str("\n[hunt]\nrounds = 1\n");
        vec![Spec {
            label: format!("{connections} tokens, bad and valid, through every placement"),
            max_connections: connections,
            text,
        }]
    }
}

/// A `[[group]]` table.
fn group(name: &str, users: u32, extra: &str, arrival: &str, steps: &[String]) -> String {
    format!(
        "\n[[group]]\nname = {}\nusers = {users}\n{extra}arrival = {arrival}\nsteps = [\n  {},\n]\n",
        quote(name),
        steps.join(",\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../scenarios/hunt.toml");

    fn shipped() -> Battery {
        load_battery_str(SHIPPED, "hunt.toml").unwrap().unwrap()
    }

    #[test]
    fn the_shipped_battery_expands_every_family() {
        let battery = shipped();
        assert_eq!(battery.families, Family::ALL.to_vec());
        assert_eq!(battery.probe.groups.len(), 1);
        for family in Family::ALL {
            let levels = battery.levels(family).unwrap();
            assert!(!levels.is_empty(), "{}", family.name());
            for level in &levels {
                assert_eq!(level.scenario.name, format!("hunt-{}", family.name()));
                // Identity is learned by calibration, not declared.
                assert_eq!(level.scenario.oracles.identity, None);
                let planned: u64 = level
                    .scenario
                    .groups
                    .iter()
                    .map(|g| u64::from(g.users * g.connections_per_user))
                    .sum();
                assert!(planned <= level.max_connections, "{}", level.label);
            }
        }
        let top = battery.levels(Family::Rendezvous).unwrap();
        assert_eq!(top.last().unwrap().max_connections, 320, "rising to 320");
    }

    #[test]
    fn plain_scenarios_are_not_batteries() {
        let text = "name = \"x\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [{ close = 1000 }]\n";
        assert!(!is_battery(text));
        assert!(load_battery_str(text, "x.toml").unwrap().is_none());
        assert!(is_battery(SHIPPED));
        // The ordinary loader says where a battery goes instead of running it as one.
        let err = super::super::load_str(SHIPPED, "hunt.toml").unwrap_err();
        assert!(err.to_string().contains("stampede hunt"), "{err}");
    }

    #[test]
    fn problems_in_the_users_tables_keep_their_lines() {
        let text = SHIPPED.replace("seed = 1", "seed = \"one\"");
        let line = text.lines().position(|l| l.starts_with("seed")).unwrap() + 1;
        let err = load_battery_str(&text, "hunt.toml").unwrap_err();
        let ScenarioError::Invalid { problems } = err else {
            panic!("expected problems")
        };
        assert_eq!(problems[0].line, line, "{problems:?}");
    }

    #[test]
    fn a_battery_refuses_groups_unknown_families_and_a_missing_request() {
        let text = "name = \"b\"\nduration = \"5s\"\n[battery]\nfamilies = [\"same-tokens\"]\n[[group]]\nname = \"g\"\nusers = 1\nsteps = []\n";
        let err = load_battery_str(text, "b.toml").unwrap_err().to_string();
        assert!(err.contains("generates its own groups"), "{err}");
        assert!(err.contains("\"same-tokens\""), "{err}");
        assert!(err.contains("same-token"), "{err}");
        assert!(err.contains("request"), "{err}");
        // A wrong name is reported once, not also as an empty list; an empty one is.
        assert!(!err.contains("name at least one family"), "{err}");
        let empty = text.replace("[\"same-tokens\"]", "[]");
        let err = load_battery_str(&empty, "b.toml").unwrap_err().to_string();
        assert!(err.contains("name at least one family"), "{err}");
    }

    #[test]
    fn without_a_reply_pattern_the_families_that_judge_answers_are_skipped() {
        let text = "name = \"b\"\nduration = \"5s\"\n[battery]\nrequest = { type = \"ping\" }\nack = \"hello\"\n";
        let battery = load_battery_str(text, "b.toml").unwrap().unwrap();
        assert!(battery.levels(Family::EarlySend).unwrap().is_empty());
        assert!(battery.levels(Family::Rendezvous).unwrap().is_empty());
        assert!(!battery.levels(Family::SameToken).unwrap().is_empty());
        // No placements named: the bad-token groups use the [auth] placement only.
        let bad = battery.levels(Family::BadTokens).unwrap();
        assert_eq!(bad[0].scenario.groups.len(), 4);
    }
}
