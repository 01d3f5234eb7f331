//! Learning invariants from calibration: what a few connections, one at a time, saw the
//! target do every time becomes an invariant checked under load (see
//! [`LearnedOracles`]). Pure: observations in, proposal out.
//!
//! Conservative by construction, since a learned invariant must never turn a correct
//! server's legitimate behaviour into a violation:
//! - identity: a string field equal to the token's `sub` in every message that carried
//!   it, present on every calibration connection, with at least two distinct users (a
//!   field that is the same for everyone cannot be identity);
//! - sequence: an integer field that went up by exactly one on every connection, seen at
//!   least three times on each, in messages of at least two kinds, starting at the same
//!   value on each (a counter shared by the whole server would have gone on from where the
//!   previous connection left it), on connections that walked their whole script (a
//!   counter inside one reply restarts with the next request);
//! - replies: the event kinds every request of a kind got back before its expectation
//!   was met, from at least two connections.
//!
//! Anything that failed on any calibration connection is dropped, never reported.

use super::frame::kind_of;
use crate::model::words::plural;
use crate::model::{
    Cause, LearnedOracles, LearnedReply, Observation, OracleSpec, SEQUENCE_SET_ASIDE_WHY,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Users identity needs to have seen: with one, a constant would pass for the subject.
pub const MIN_USERS: usize = 2;
/// Occurrences a sequence field needs on every connection.
pub const MIN_SEQUENCE: usize = 3;
/// Connections a reply pattern needs to have been seen on.
pub const MIN_REPLY_CONNS: usize = 2;
/// How deep into a message fields are looked for.
const MAX_DEPTH: usize = 8;
/// Leaves looked at per message (a hostile server may send huge frames).
const MAX_LEAVES: usize = 256;

/// One valid-token calibration connection that the target accepted.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    /// The token's subject.
    pub sub: &'a str,
    pub observed: &'a Observation,
    /// Whether the connection walked its whole script (not cut by calibration's bound): a
    /// counter seen over part of a script may restart later in it.
    pub complete: bool,
}

/// What calibration learned, and the facts it only states.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proposal {
    /// Checked under load.
    pub learned: LearnedOracles,
    /// Valid-token connections made, and how many the target accepted (a 101, then no refusal: a close after it is none).
    pub valid: (usize, usize),
    /// Bad-token connections: the catalogue entry (or forge) and what the target answered.
    pub refusals: Vec<(String, String)>,
    /// Messages looked at, over all accepted connections.
    pub messages: usize,
    /// Candidate invariants that failed during calibration: dropped, only counted.
    pub dropped: usize,
    /// Of those, the fields that went up by exactly one on every connection, but on one
    /// message kind only (a step number inside one reply may restart with each request):
    /// named, for the user to declare if it does count per connection.
    pub sequence_one_kind: Vec<String>,
    /// How the first valid-token connection the target did not accept ended (calibration
    /// stops there); `None` when every one was accepted.
    pub unaccepted: Option<Cause>,
    /// Whether the server shed that connection under load ([`crate::model::Attempt::is_shed`]:
    /// HTTP 429 or 503, a close 1013 or a `reject.shed` code): "not now", no sign of a
    /// wrong URL or token.
    pub unaccepted_shed: bool,
    /// Whether that connection was refused with an auth refusal under the scenario's
    /// `reject` rules ([`is_auth_refusal`]): the token settings are what to check.
    ///
    /// [`is_auth_refusal`]: super::verdict::is_auth_refusal
    pub unaccepted_auth: bool,
    /// Calibration's own handshake bound (3 s, `run::learn::HANDSHAKE`), when that
    /// connection's handshake ran it out while the scenario's `handshake_timeout` is
    /// longer: the target was slower than calibration waits, which the load (waiting the
    /// scenario's bound) may show it is allowed to be.
    pub unaccepted_slow: Option<std::time::Duration>,
    /// Connections calibration meant to make (valid-token ones, plus the bad-token one
    /// when the plan has one), whether its time bound (a `--budget`'s share, or the
    /// overall calibration limit) cut it before it made them all (or cut one of them
    /// short), and how long it took.
    pub planned: usize,
    pub cut: bool,
    pub elapsed: std::time::Duration,
    /// Whether Ctrl-C stopped calibration before it made every connection it meant to
    /// (or stopped one of them): what it learned comes from fewer connections.
    pub interrupted: bool,
    /// How many tokens `[auth] tokens` gave calibration (a file's, a list's, a command's
    /// lines); `None` for minted or login tokens. Fewer than the plan's token slots puts
    /// one user on several connections ([`crate::model::Plan::shares_users`]).
    pub tokens_read: Option<usize>,
}

/// What [`NoneAccepted::what`] says of a calibration connection whose handshake ran out
/// calibration's own bound, shorter than the scenario's: the verdict reads it to leave a
/// server the load's connections got through out of blame.
pub const SLOWER_THAN_CALIBRATION: &str = "within calibration's own";

/// Calibration learned nothing because the target accepted none of its valid-token
/// connections: the one account of it that `learn`, `run`'s and `hunt`'s calibration
/// lines give. `cause`: how the first one ended (`None`: none was tried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoneAccepted {
    pub cause: Option<Cause>,
    /// The server shed the connection under load (see [`Proposal::unaccepted_shed`]).
    pub shed: bool,
    /// The target refused it with an auth refusal (see [`Proposal::unaccepted_auth`]).
    pub auth: bool,
    /// Calibration's own handshake bound that its handshake ran out, shorter than the
    /// scenario's (see [`Proposal::unaccepted_slow`]).
    pub slow: Option<std::time::Duration>,
    /// The target URL calibration dialled, as shown.
    pub target: String,
}

/// What [`NoneAccepted::what`] adds to the cause when calibration's connections were shed,
/// which the verdict reads back ([`super::verdict`]'s calibration note).
pub const SHED_NOTE: &str = ": load shedding";

impl NoneAccepted {
    /// What happened: `the target accepted no calibration connection (http_401)`.
    pub fn what(&self) -> String {
        let cause = match &self.cause {
            None => "no attempt".to_string(),
            // Nothing refused it: calibration gave up waiting for what accepts it.
            Some(Cause::Interrupted) => "none was answered so as to accept it".to_string(),
            Some(cause) => cause.to_string(),
        };
        if let Some(bound) = self.slow {
            return format!(
                "the target answered no calibration connection's handshake {SLOWER_THAN_CALIBRATION} \
                 {bound:?} bound ({cause}; the scenario's handshake_timeout, which the load \
                 waits, is longer)"
            );
        }
        let shed = if self.shed { SHED_NOTE } else { "" };
        format!("the target accepted no calibration connection ({cause}{shed})")
    }

    /// What to check about it: whether the server speaks WebSocket is a question only
    /// once a TCP connection was made; before that, the port or the host.
    pub fn check(&self) -> String {
        if self.shed {
            "the target sheds load: calibrate when it is less busy".into()
        } else if self.slow.is_some() {
            // Said by `learn` too, which has no load of its own: the way to tell a slow
            // server from a silent one is a run, whose load waits the scenario's bound.
            "a slow handshake is no fault where the scenario's bound allows it: a run's load \
             waits that bound (`stampede run`, with --no-learn to skip calibration) and says \
             whether the connections get through"
                .into()
        } else if self.auth {
            "check the token settings ([auth])".into()
        } else {
            match &self.cause {
                Some(Cause::Connect(kind)) => {
                    super::verdict::unconnected_check(kind == "refused", &self.target)
                }
                Some(Cause::Timeout("connect")) => {
                    super::verdict::unconnected_check(false, &self.target)
                }
                Some(Cause::Http(status)) => super::verdict::http_status_check(&[*status]).into(),
                // Upgraded, and closed by its own script before the server accepted it:
                // the server spoke WebSocket, just never what acceptance waits for.
                Some(Cause::ClientClose(_)) => "check `[oracles] accepted` against what the \
                                                server sends when it accepts a connection"
                    .into(),
                _ => "check the URL and that the server speaks WebSocket there".into(),
            }
        }
    }
}

impl std::fmt::Display for NoneAccepted {
    /// `the target accepted no calibration connection (http_401): nothing was learned;
    /// check the token settings ([auth])`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: nothing was learned; {}", self.what(), self.check())
    }
}

impl Proposal {
    /// The connections calibration made: its valid-token ones and the refused ones.
    pub fn made(&self) -> usize {
        self.valid.0 + self.refusals.len()
    }

    /// How far calibration got: `1 of 3 connections`.
    pub fn progress(&self) -> String {
        format!(
            "{} of {}",
            self.made(),
            plural(self.planned as u64, "connection")
        )
    }

    /// Why nothing was learned, when the target accepted no valid-token calibration
    /// connection to `target` (the URL as shown); `None` when it accepted one (whatever
    /// was then learned), or made none (no valid token in the plan: nothing was asked).
    pub fn none_accepted(&self, target: &str) -> Option<NoneAccepted> {
        // Ctrl-C cut the calibration: that, not the target, is why none was accepted. A
        // plan with no valid-token connection to make (every group forged) asked nothing.
        let asked = self.valid.0 > 0;
        // Nor did a calibration cut (its bound, the scenario's duration) before any
        // connection was answered: the time ran out, not the target's welcome.
        let cut_unanswered = self.cut && self.unaccepted.is_none();
        (asked && self.valid.1 == 0 && !self.interrupted && !cut_unanswered).then(|| NoneAccepted {
            cause: self.unaccepted.clone(),
            shed: self.unaccepted_shed,
            auth: self.unaccepted_auth,
            slow: self.unaccepted_slow,
            target: target.to_string(),
        })
    }
}

/// Proposes invariants from the accepted valid-token connections `samples`; the declared
/// oracles of `spec` win (a learned field the scenario already declares is left out), and
/// its `type_field`/kinds name events and requests.
pub fn propose(spec: &OracleSpec, samples: &[Sample<'_>]) -> Proposal {
    let users: BTreeSet<&str> = samples.iter().map(|s| s.sub).collect();
    let mut dropped = 0;
    let identity = if users.len() >= MIN_USERS {
        let (kept, lost) = identity(spec, samples);
        dropped += lost;
        kept.into_iter()
            .filter(|f| spec.identity.as_deref() != Some(f.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let (found, lost) = if samples.iter().all(|s| s.complete) {
        sequence(spec, samples)
    } else {
        (Sequences::default(), 0)
    };
    dropped += lost;
    let undeclared = |f: &String| spec.sequence.as_deref() != Some(f.as_str());
    let sequence = found.kept.into_iter().filter(undeclared).collect();
    let sequence_one_kind = found.one_kind.into_iter().filter(undeclared).collect();
    let sequence_broken = found
        .broken
        .into_iter()
        .filter(|(f, ..)| undeclared(f))
        .collect();
    let (replies, lost) = replies(spec, samples);
    dropped += lost;
    Proposal {
        learned: LearnedOracles {
            identity,
            sequence,
            replies,
            sequence_set_aside: Vec::new(),
            sequence_broken,
            unaccepted: None,
        },
        messages: samples.iter().map(|s| s.observed.messages.len()).sum(),
        dropped,
        sequence_one_kind,
        ..Proposal::default()
    }
}

/// Drops the learned identity fields that the scenario itself tests in an `expect`'s
/// `where` (`where_paths`, in any spelling): a script that filters messages on a field
/// (SignalR's `where = { "/arguments/2" = "{{sub}}" }`, a chat room's sender) says that
/// other users' values legitimately reach this connection, which calibration, one user
/// at a time, cannot see; learned under load, such a field flags every broadcast.
pub fn drop_tested<S: AsRef<str>>(proposal: &mut Proposal, where_paths: &[S]) {
    let tested: Vec<Vec<String>> = where_paths.iter().map(|p| segments(p.as_ref())).collect();
    let before = proposal.learned.identity.len();
    proposal
        .learned
        .identity
        .retain(|field| !tested.contains(&segments(field)));
    proposal.dropped += before - proposal.learned.identity.len();
}

/// Drops the learned sequences on fields the client writes itself: a leaf of a `send`
/// template (`sends`: a JSON-RPC request's `id`, `{{run:int}}`), or a path answers carry
/// a sent value in (`correlated`: every `correlate` and `correlate_reply`). Such a field
/// counts up because the client numbers its requests and the server echoes the number;
/// one connection at a time saw the answers in order, but under load a correct server
/// may answer requests in any order (JSON-RPC allows it), and the "sequence" would flag
/// that.
pub fn drop_echoed<S: AsRef<str>>(proposal: &mut Proposal, sends: &[&Value], correlated: &[S]) {
    let mut echoed: BTreeSet<Vec<String>> =
        correlated.iter().map(|p| segments(p.as_ref())).collect();
    for template in sends {
        let mut ls = Vec::new();
        leaves(template, &mut ls);
        echoed.extend(ls.into_iter().map(|(path, _)| path));
    }
    let written = |field: &str| echoed.contains(&segments(field));
    let before = proposal.learned.sequence.len();
    proposal.learned.sequence.retain(|f| !written(f));
    proposal.dropped += before - proposal.learned.sequence.len();
    proposal
        .learned
        .sequence_broken
        .retain(|(f, ..)| !written(f));
    proposal.sequence_one_kind.retain(|f| !written(f));
}

/// A field path's parts, whatever its spelling: `a.b.0`, `/a/b/0` (`~1`, `~0` unescaped).
fn segments(path: &str) -> Vec<String> {
    match path.strip_prefix('/') {
        Some(rest) => rest
            .split('/')
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect(),
        None => path.split('.').map(str::to_string).collect(),
    }
}

/// Every leaf of `msg` with its path (object keys and array indices), depth- and
/// count-bounded. None of a batch the scenario does not declare
/// ([`is_batch`](crate::oracle::frame::is_batch)): the
/// hint naming `[oracles] batched` is the fix, not a field under an element's position.
fn leaves<'a>(msg: &'a Value, out: &mut Vec<(Vec<String>, &'a Value)>) {
    if crate::oracle::frame::is_batch(msg) {
        return;
    }
    fn walk<'a>(v: &'a Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Value)>) {
        if out.len() >= MAX_LEAVES {
            return;
        }
        match v {
            Value::Object(map) if path.len() < MAX_DEPTH => {
                for (k, child) in map {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) if path.len() < MAX_DEPTH => {
                for (i, child) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Object(_) | Value::Array(_) => {}
            leaf => out.push((path.clone(), leaf)),
        }
    }
    walk(msg, &mut Vec::new(), out);
}

/// A path as a scenario writes it: a plain name or dotted path when every part is plain,
/// else a JSON Pointer.
pub fn path_text(parts: &[String]) -> String {
    let plain = parts
        .iter()
        .all(|p| !p.is_empty() && !p.contains(['.', '/', '~']) && !p.starts_with('/'));
    if plain && !parts.is_empty() {
        return parts.join(".");
    }
    parts.iter().fold(String::new(), |mut s, p| {
        s.push('/');
        s.push_str(&p.replace('~', "~0").replace('/', "~1"));
        s
    })
}

/// Identity candidates (kept) and how many were dropped. The first kept is the one
/// [`to_toml`] offers to declare: the field the most message kinds carry (a user's own
/// `user_id` on every answer, rather than a chat room's `from`, which only its broadcast
/// carries and which names other users once several share the room), then the shortest.
/// Whether the leaf at `path` of `msg` is an element of an array (its parent is one).
fn in_a_list(msg: &Value, path: &[String]) -> bool {
    let Some((_, parent)) = path.split_last() else {
        return false;
    };
    // Walked by the segments `leaves` made: an object's key or a list's index.
    let at = parent.iter().try_fold(msg, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
        _ => None,
    });
    at.is_some_and(Value::is_array)
}

fn identity(spec: &OracleSpec, samples: &[Sample<'_>]) -> (Vec<String>, usize) {
    // Per path: on how many connections it held (present, always the sub), and whether it
    // ever equalled a sub at all (a candidate worth counting as dropped).
    let mut held: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut broke: BTreeSet<Vec<String>> = BTreeSet::new();
    // Per path: the message kinds that carried it.
    let mut kinds: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for s in samples {
        let mut here: BTreeMap<Vec<String>, bool> = BTreeMap::new();
        for msg in &s.observed.messages {
            let kind = kind_of(spec, msg)
                .map(|k| k.into_owned())
                .unwrap_or_default();
            let mut ls = Vec::new();
            leaves(msg, &mut ls);
            // An element of a list (`members.0`) holds whoever the list names (a room's
            // roster, each connection alone in it during calibration), not whose the
            // message is: no identity. A field of an object in a list (`data.0.user`, a
            // Socket.IO event's payload) is one.
            ls.retain(|(path, _)| !in_a_list(msg, path));
            for (path, v) in ls {
                let is_sub = v.as_str() == Some(s.sub);
                kinds.entry(path.clone()).or_default().insert(kind.clone());
                let entry = here.entry(path).or_insert(true);
                *entry &= is_sub;
            }
        }
        for (path, ok) in here {
            if ok {
                *held.entry(path).or_default() += 1;
            } else {
                broke.insert(path);
            }
        }
    }
    let mut kept: Vec<Vec<String>> = Vec::new();
    let mut dropped = 0;
    for (path, n) in held {
        if n == samples.len() && !broke.contains(&path) {
            kept.push(path);
        } else {
            dropped += 1;
        }
    }
    let carried_by = |p: &Vec<String>| kinds.get(p).map_or(0, BTreeSet::len);
    kept.sort_by_key(|p| (std::cmp::Reverse(carried_by(p)), p.len(), path_text(p)));
    (kept.iter().map(|p| path_text(p)).collect(), dropped)
}

/// Sequence candidates ([`Sequences`]: kept, and those named though dropped) and how many
/// were dropped.
fn sequence(spec: &OracleSpec, samples: &[Sample<'_>]) -> (Sequences, usize) {
    if samples.is_empty() {
        return (Sequences::default(), 0);
    }
    // Per path, per connection: (first value, occurrences, always +1, message kinds). A
    // counter carried by one kind only (a step number inside one reply) may restart with
    // each request: it must run across at least two kinds.
    type Seen = (i64, usize, bool, BTreeSet<String>);
    let mut per_conn: Vec<BTreeMap<Vec<String>, Seen>> = Vec::new();
    for s in samples {
        let mut here: BTreeMap<Vec<String>, Seen> = BTreeMap::new();
        let mut last: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        for (i, msg) in s.observed.messages.iter().enumerate() {
            if s.observed.streams.contains(&i) {
                // A reconnect restarts per-connection counters.
                last.clear();
            }
            let kind = kind_of(spec, msg).unwrap_or_default().into_owned();
            let mut ls = Vec::new();
            leaves(msg, &mut ls);
            for (path, v) in ls {
                let Some(n) = v.as_i64().filter(|_| v.is_i64() || v.is_u64()) else {
                    continue;
                };
                let entry = here
                    .entry(path.clone())
                    .or_insert((n, 0, true, BTreeSet::new()));
                entry.1 += 1;
                if entry.3.len() < 2 {
                    entry.3.insert(kind.clone());
                }
                if let Some(prev) = last.get(&path) {
                    entry.2 &= n == prev.saturating_add(1);
                }
                last.insert(path, n);
            }
        }
        per_conn.push(here);
    }
    let paths: BTreeSet<&Vec<String>> = per_conn.iter().flat_map(|m| m.keys()).collect();
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut one_kind_paths = Vec::new();
    let mut broken_paths = Vec::new();
    for path in paths {
        let all: Vec<&Seen> = per_conn.iter().filter_map(|m| m.get(path)).collect();
        let starts: BTreeSet<i64> = all.iter().map(|(first, ..)| *first).collect();
        let counter = all.len() == samples.len()
            && all
                .iter()
                .all(|(_, n, up, kinds)| *n >= MIN_SEQUENCE && *up && kinds.len() >= 2)
            && starts.len() == 1;
        // Everything a counter needs but a second kind: named, not only counted (a
        // protocol whose every message is of one kind counts this way too).
        let one_kind = all.len() == samples.len()
            && all
                .iter()
                .all(|(_, n, up, kinds)| *n >= MIN_SEQUENCE && *up && kinds.len() == 1)
            && starts.len() == 1;
        let held = all.iter().filter(|(_, _, up, _)| *up).count();
        let broken = all.len() == samples.len()
            && starts.len() == 1
            && held > 0
            && held < all.len()
            && all
                .iter()
                .all(|(_, n, _, kinds)| *n >= MIN_SEQUENCE && kinds.len() >= 2);
        if counter {
            kept.push(path_text(path));
        } else if broken {
            broken_paths.push((path_text(path), held, all.len()));
            dropped += 1;
        } else if one_kind {
            one_kind_paths.push(path_text(path));
        } else if all.iter().any(|(_, n, up, _)| *n >= 2 && *up) {
            dropped += 1;
        }
    }
    let dropped = dropped + one_kind_paths.len();
    (
        Sequences {
            kept,
            one_kind: one_kind_paths,
            broken: broken_paths,
        },
        dropped,
    )
}

/// What [`sequence`] found: the counters kept, and those named though not kept.
#[derive(Default)]
struct Sequences {
    kept: Vec<String>,
    /// Up by one on every connection, on one message kind only.
    one_kind: Vec<String>,
    /// Up by one on some connections, broken on others: `(field, held on, out of)`.
    broken: Vec<(String, usize, usize)>,
}

/// Reply patterns per request kind and how many were dropped.
fn replies(spec: &OracleSpec, samples: &[Sample<'_>]) -> (Vec<LearnedReply>, usize) {
    // Per request kind: the events every span had, and on how many connections it was seen.
    let mut common: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
    for s in samples {
        let mut seen_here: BTreeSet<&str> = BTreeSet::new();
        for (request, events) in &s.observed.spans {
            let events: BTreeSet<&str> = events
                .iter()
                .map(String::as_str)
                .filter(|e| *e != spec.error_event)
                .collect();
            let entry = common
                .entry(request.as_str())
                .or_insert_with(|| (events.clone(), 0));
            entry.0 = entry.0.intersection(&events).copied().collect();
            if seen_here.insert(request.as_str()) {
                entry.1 += 1;
            }
        }
    }
    let mut kept = Vec::new();
    let mut dropped = 0;
    for (request, (events, conns)) in common {
        if events.is_empty() {
            dropped += 1;
            continue;
        }
        if conns < MIN_REPLY_CONNS {
            continue;
        }
        kept.push(LearnedReply {
            request: request.to_string(),
            events: events.into_iter().map(str::to_string).collect(),
        });
    }
    (kept, dropped)
}

/// The answer [`Proposal::refusals`] records for a bad token the target accepted: the
/// learned file says it was accepted, not refused.
pub const BAD_TOKEN_ACCEPTED: &str = "acceptance (101)";

/// How a refused attempt's answer reads in the learned file: `HTTP 401`, `close 4001`,
/// `message refused`.
pub fn refusal_text(cause: &Cause) -> String {
    match cause {
        Cause::Http(code) => format!("HTTP {code}"),
        Cause::ServerClose(code) => format!("close {code}"),
        Cause::RefusedInBand(kind) => format!("message {kind}"),
        other => other.to_string(),
    }
}

/// The proposal as TOML to paste into a scenario: `[oracles.identity]` and
/// `[oracles.sequence]` tables for what the scenario does not declare yet (one field each;
/// the others, the reply patterns and the acceptance facts as comments, since no
/// `[oracles]` key declares them). `origin` says where it was learned.
pub fn to_toml(p: &Proposal, spec: &OracleSpec, origin: &str) -> String {
    let mut t = String::new();
    let l = &p.learned;
    let _ = writeln!(t, "# Learned by calibrating against {origin}:");
    let _ = writeln!(
        t,
        "# {} of {} valid-token connections accepted, {} seen, {} dropped.",
        p.valid.1,
        p.valid.0,
        plural(p.messages as u64, "message"),
        plural(p.dropped as u64, "candidate")
    );
    if !(l.identity.is_empty() && l.sequence.is_empty()) {
        let _ = writeln!(
            t,
            "# Paste the tables into the scenario (they are sub-tables of [oracles])."
        );
    }
    table(&mut t, "identity", &l.identity, spec.identity.as_deref());
    if spec.identity.is_none() && !l.identity.is_empty() {
        // Calibration runs one connection at a time: it never saw another user's message.
        let _ = writeln!(
            t,
            "# Declared, identity judges every message a connection gets; calibration ran one \
connection at a time and saw no other user's. If the server sends users each other's \
messages carrying this field (a room's broadcast), leave it learned: checked then only on \
a connection's own answers (correlated with its request) and greetings."
        );
    }
    table(&mut t, "sequence", &l.sequence, spec.sequence.as_deref());
    for (field, held, of) in &l.sequence_broken {
        let _ = writeln!(
            t,
            "# {}.",
            crate::model::learned::broken_words(field, *held, *of)
        );
    }
    for field in &p.sequence_one_kind {
        let _ = writeln!(
            t,
            "# sequence {field}: went up by one on every connection, but on one message kind \
only (a counter that may restart with each request): not learned; declare it as \
[oracles.sequence] if it counts per connection."
        );
    }
    for field in &l.sequence_set_aside {
        let _ = writeln!(
            t,
            "# sequence {field}: learned, set aside (not checked): {SEQUENCE_SET_ASIDE_WHY}; \
declare it as [oracles.sequence] only if it counts per connection."
        );
    }
    if p.interrupted {
        let _ = writeln!(
            t,
            "# Calibration was interrupted (Ctrl-C) after {}: this is what it learned so far.",
            p.progress()
        );
    }
    if p.valid.0 == 0 {
        let _ = writeln!(
            t,
            "# Nothing was learned: the plan has no valid-token connection to calibrate with."
        );
    } else if p.valid.1 == 0 {
        let _ = writeln!(
            t,
            "# Nothing was learned: the target accepted no calibration connection."
        );
    } else if l.is_empty() {
        let _ = writeln!(
            t,
            "# No invariant held on every calibration connection but those the scenario \
             declares."
        );
    }
    if !l.replies.is_empty() {
        let _ = writeln!(
            t,
            "# Replies each request kind got every time before its expectation was met"
        );
        let _ = writeln!(
            t,
            "# (a reply short of one is counted, not judged: name a kind in an expect to require it):"
        );
        for r in &l.replies {
            let _ = writeln!(t, "#   {} -> {}", r.request, r.events.join(", "));
        }
    }
    for (name, answer) in &p.refusals {
        if answer == BAD_TOKEN_ACCEPTED {
            let _ = writeln!(t, "# Bad token {name}: accepted (101), not refused.");
        } else {
            let _ = writeln!(t, "# Bad token {name}: refused with {answer}.");
        }
    }
    t
}

/// One `[oracles.NAME]` table for the first learned field, when the scenario declares
/// none; every other field as a comment.
fn table(t: &mut String, name: &str, fields: &[String], declared: Option<&str>) {
    let mut rest = fields.iter();
    if declared.is_none() {
        if let Some(first) = rest.next() {
            let _ = writeln!(t, "\n[oracles.{name}]");
            let _ = writeln!(t, "field = {}", toml_string(first));
        }
    }
    for other in rest {
        let _ = writeln!(t, "# also learned for {name} (checked as learned): {other}");
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    // JSON string escapes are valid TOML basic-string escapes.
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests;
