//! Walking a connection's script one action at a time.
//!
//! A plan stores each group's steps once; repeats stay loops. [`Cursor`] turns them into
//! the connection's actions as the engine asks for them, so a `repeat = 1000000` costs a
//! few counters, not a million actions. Every random choice (a think time, a backoff delay,
//! `{{random}}`, `{{uuid}}`, the start jitter) draws from [`draw_rng`]: a ChaCha8 stream
//! keyed by (seed, connection, step path) and selected by the iteration, so iteration
//! 900,000 of a loop draws the same values whether or not the 899,999 before it were
//! walked, and removing a connection or a step leaves every other draw as it was.
//!
//! The counters a template sees (`{{run}}`, the 1-based count of sends) and the
//! correlation values of expectations (the latest send carrying the field path) follow the
//! walk. `{{$name}}` capture references are not the cursor's business: they stay as
//! written in the actions it yields, and the connection fills them from what it captured
//! when it sends (a correlation value holding one is filled when the expectation is
//! registered).

use super::sample;
use super::template::{self, expand, Compiled, Key};
use super::NoRng;
use crate::model::path::lookup;
use crate::model::{
    AbortHow, Action, ConnPlan, Expect, ExpectPlan, ExpectRare, FieldTest, Leftovers, PatternItem,
    Plan, Step, StepPlace, Test,
};
use crate::prefetch::Warm;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;

/// The site of a connection's start jitter (step paths hash elsewhere, see `site`).
pub const JITTER_SITE: u64 = u64::MAX;

/// The random stream of one draw site: ChaCha8 keyed by (seed, connection, site), stream
/// `iteration` (the flattened iteration index of the enclosing loops; 0 outside loops).
/// Every (connection, site, iteration) gets its own 2^68-word stream, so draws never
/// overlap however many values one template takes.
pub fn draw_rng(seed: u64, conn: u32, site: u64, iteration: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..12].copy_from_slice(&conn.to_le_bytes());
    key[16..24].copy_from_slice(&site.to_le_bytes());
    key[24..].copy_from_slice(b"stampede");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(iteration);
    rng
}

/// SplitMix64's finaliser: a bijection on u64 that mixes every bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The draw site of a step from its path: the indices of the enclosing repeats in their
/// lists, then the step's own index.
pub(super) fn site(path: impl IntoIterator<Item = usize>) -> u64 {
    path.into_iter()
        .fold(0x5354_414d_5045_4445, |h, i| mix(h ^ i as u64))
}

/// The draw site of the step at `index` of the innermost list of a cursor's `frames`: the
/// steps of the repeats around it (every frame but the script's own), then `index`.
fn site_of(frames: &[Frame], index: usize) -> u64 {
    site(frames.iter().skip(1).map(|f| f.step).chain([index]))
}

/// [`draw_rng`], keyed on the first draw: the same values, without the ChaCha key setup
/// nor the step's site (two SplitMix64 rounds a step) for a template that draws nothing.
struct LazyRng<'f> {
    /// `(seed, connection, iteration)`.
    key: (u64, u32, u64),
    /// The step's place: the cursor's frames and its index in the innermost list, for
    /// [`site_of`].
    place: (&'f [Frame], usize),
    rng: Option<ChaCha8Rng>,
}

impl<'f> LazyRng<'f> {
    fn new(seed: u64, conn: u32, place: (&'f [Frame], usize), flat: u64) -> Self {
        LazyRng {
            key: (seed, conn, flat),
            place,
            rng: None,
        }
    }

    fn get(&mut self) -> &mut ChaCha8Rng {
        let (seed, conn, flat) = self.key;
        let (frames, index) = self.place;
        self.rng
            .get_or_insert_with(|| draw_rng(seed, conn, site_of(frames, index), flat))
    }
}

impl rand::RngCore for LazyRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.get().next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.get().next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.get().fill_bytes(dst)
    }
}

/// One list of steps being walked: the script itself, or one repeat's body.
#[derive(Debug, Clone)]
struct Frame {
    /// Index of this frame's `repeat` in its parent's list (0 for the script).
    step: usize,
    /// Next step to look at.
    next: usize,
    /// Current iteration (0-based) and how many there are.
    iter: u32,
    times: u32,
    /// Flattened index of the current iteration over all enclosing loops: what selects the
    /// draw stream of the steps inside. Saturating; validation keeps a connection's actions
    /// far below where it could saturate.
    flat: u64,
    /// A paced repeat's interval.
    every: Option<Duration>,
    /// The `PaceAt` of the current iteration is still to be yielded.
    pace_due: bool,
}

/// Where a connection is in its actions. Owns no part of the plan: every call takes the
/// plan and the connection, so a cursor lives next to an `Arc<Plan>` and clones cheaply
/// (a few frames and the correlation values).
#[derive(Debug, Clone)]
pub struct Cursor {
    /// The connection this cursor walks, as its steps read it.
    me: Whose,
    /// Explicit actions: the index of the next one.
    explicit: Option<usize>,
    started: bool,
    frames: Vec<Frame>,
    /// 1-based counter of sends, the `{{run}}` placeholder.
    run: u64,
    /// The field paths the script's expectations correlate on (`Plan::correlate_fields`),
    /// found when the walk starts; the compiled sends' copy when there is one, which every
    /// connection of the script shares (and so finds in the cache).
    correlated: Arc<[String]>,
    /// Each correlated path's value in the latest send that had it, by its index in
    /// `correlated` (empty before any): an expectation correlates with the latest request
    /// carrying its field, even if a send without that field came in between. A vector
    /// beside the cursor, not a map: a map's node was one more cache miss per send and
    /// per expectation at a thousand connections.
    last_values: Vec<String>,
    /// The values of the latest sends that carried a correlated path, newest last (the
    /// newest is `last_values`' own), as (index in `correlated`, value, the send's `{{run}}`),
    /// for expectations paired with an earlier send ([`Expect::earlier_send`]): at most
    /// `keep_older` + 1 per path, none in most scripts.
    older: Vec<(usize, String, u64)>,
    /// The script's largest [`Expect::earlier_send`].
    keep_older: u8,
    /// Actions yielded so far.
    yielded: u64,
    /// The run's compiled `send` templates of this connection's script, when the engine
    /// renders sends as text ([`Cursor::next_rendered`]).
    templates: Option<Arc<SendTemplates>>,
    /// The slot texts of the latest rendered send (reused: no string per slot per send).
    slots: Vec<String>,
    /// The patterns of the expectations this connection opened, copied from the script
    /// once per connection (keyed by the address of the step's items). Each expectation
    /// holds its pattern until it is long resolved; holding the script's own copy would
    /// have every expectation of every connection update one reference count, a cache
    /// line that every worker thread writes.
    patterns: Vec<(usize, Arc<[PatternItem]>)>,
}

/// One of a cursor's copies of its script's patterns ([`Cursor::pattern_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternKey(usize);

/// What a cursor keeps of its connection's [`ConnPlan`]: the fields its steps read.
#[derive(Debug, Clone, Copy)]
struct Whose {
    id: u32,
    group: u32,
    user: u32,
    token: u32,
}

/// What [`Cursor::next_rendered`] yields.
#[derive(Debug)]
pub enum Next {
    /// The next action, as [`Cursor::next`] gives it.
    Action(Action),
    /// The next action is a `send`, already rendered as text into the caller's buffer.
    Rendered,
    /// The next action is an `expect`: [`Action::Expect`] without its box (one allocation
    /// per expected answer less).
    Expect(ExpectPlan),
}

/// A script's `send` templates compiled for one run (`Compiled`), found by the address
/// of the template in the plan they were compiled from: a cursor given them must walk that
/// same plan (a template not found takes the general path).
#[derive(Debug, Default)]
pub struct SendTemplates {
    /// (template address, compiled), sorted by address.
    by_addr: Vec<(usize, Compiled)>,
    /// The script's correlated paths (`Plan::correlate_fields`): a compiled send's keys
    /// index them, and every connection of the script reads this one copy.
    correlated: Arc<[String]>,
}

impl SendTemplates {
    /// Compiles the `send` steps of `conn`'s script; `None` for a connection with explicit
    /// actions or without a template that compiles.
    pub fn of(plan: &Plan, conn: &ConnPlan) -> Option<Arc<SendTemplates>> {
        let script = plan.script_of(conn)?;
        let correlated = plan.correlate_fields(conn);
        let mut by_addr: Vec<(usize, Compiled)> = crate::model::deep_steps(script)
            .filter_map(|step| match step {
                Step::Send { template } => Compiled::new(template, &correlated)
                    .map(|c| (std::ptr::from_ref(template) as usize, c)),
                _ => None,
            })
            .collect();
        if by_addr.is_empty() {
            return None;
        }
        by_addr.sort_by_key(|(a, _)| *a);
        Some(Arc::new(SendTemplates {
            by_addr,
            correlated: correlated.into(),
        }))
    }

    #[inline]
    fn find(&self, template: &serde_json::Value) -> Option<&Compiled> {
        let addr = std::ptr::from_ref(template) as usize;
        let at = self.by_addr.binary_search_by_key(&addr, |(a, _)| *a).ok()?;
        self.by_addr.get(at).map(|(_, c)| c)
    }
}

impl Cursor {
    /// A cursor before the first action of `conn`.
    pub fn new(conn: &ConnPlan) -> Self {
        Cursor {
            me: Whose {
                id: conn.id,
                group: conn.group,
                user: conn.user,
                token: conn.token,
            },
            explicit: (!conn.is_scripted()).then_some(0),
            started: false,
            frames: Vec::new(),
            run: 0,
            correlated: Arc::from([]),
            last_values: Vec::new(),
            older: Vec::new(),
            keep_older: 0,
            yielded: 0,
            templates: None,
            slots: Vec::new(),
            patterns: Vec::new(),
        }
    }

    /// Lets [`Cursor::next_rendered`] render the sends `templates` holds as text.
    pub fn with_templates(mut self, templates: Option<Arc<SendTemplates>>) -> Self {
        self.templates = templates;
        self
    }

    /// Which of this connection's copies of its script's patterns `items` is: what names
    /// the expectation in progress without holding a count on its pattern. `None` for a
    /// pattern the cursor keeps no copy of (one with placeholders, an explicit plan's).
    pub fn pattern_key(&self, items: &Arc<[PatternItem]>) -> Option<PatternKey> {
        self.patterns
            .iter()
            .position(|(_, own)| Arc::ptr_eq(own, items))
            .map(PatternKey)
    }

    /// The pattern copy `key` names ([`Cursor::pattern_key`]).
    pub fn kept_pattern(&self, key: PatternKey) -> Option<&Arc<[PatternItem]>> {
        self.patterns.get(key.0).map(|(_, own)| own)
    }

    /// The group of the connection it walks (its index in `Plan::groups`), from the
    /// cursor's own copy: the plan's entry for the connection is one more cache line.
    pub fn group(&self) -> u32 {
        self.me.group
    }

    /// Actions yielded so far: the 1-based number of the action in progress.
    pub fn yielded(&self) -> u64 {
        self.yielded
    }

    /// The next action of `conn` (which must be the connection this cursor was made for),
    /// or `None` when the script is over.
    pub fn next(&mut self, plan: &Plan, conn: &ConnPlan) -> Option<Action> {
        match self.next_into(plan, conn, None, &mut Leftovers::default())? {
            Next::Action(action) => Some(action),
            Next::Expect(expect) => Some(Action::Expect(Box::new(expect))),
            // Only with a buffer to render into.
            Next::Rendered => None,
        }
    }

    /// The script step of the action last yielded, as the scenario file numbers it
    /// ([`StepPlace`]: 1-based, dotted inside a `repeat`, `2.1` the first step of the
    /// repeat at step 2; a repeat's own pacing actions are the repeat's step).
    /// [`StepPlace::NONE`] before the first action, for the implicit connect, and for a
    /// connection of explicit actions. No allocation: it runs for every expectation.
    pub fn step_place(&self) -> StepPlace {
        if self.explicit.is_some() {
            return StepPlace::NONE;
        }
        let Some(top) = self.frames.last() else {
            return StepPlace::NONE;
        };
        // Each loop's step in its parent's list, then the step in the innermost list (its
        // `next` has moved past it; 0 there means the loop itself yielded last).
        let mut path = [0usize; StepPlace::LEVELS + 1];
        let mut len = 0;
        let loops = self.frames.iter().skip(1).map(|f| f.step + 1);
        let own = (top.next > 0).then_some(top.next);
        for index in loops.chain(own) {
            match path.get_mut(len) {
                Some(slot) => *slot = index,
                None => return StepPlace::NONE,
            }
            len += 1;
        }
        StepPlace::of(&path[..len])
    }

    /// Adds where the next step reads first ([`Warm`]): the loop frames, the patterns, the
    /// latest correlated values (the first one's text too: most scripts correlate on one).
    pub fn warm(&self, warm: &mut Warm) {
        warm.slice(&self.frames);
        warm.slice(&self.patterns);
        warm.slice(&self.slots);
        warm.slice(&self.last_values);
        if let Some(first) = self.last_values.first() {
            warm.slice(first.as_bytes());
        }
    }

    /// [`Cursor::next`], except that a `send` whose template was compiled
    /// ([`Cursor::with_templates`]) is rendered as JSON text onto `out` (the same bytes as
    /// serializing the action's message) and yields [`Next::Rendered`], and an `expect`
    /// yields [`Next::Expect`], its `(field, value)` written into `spare`'s strings when
    /// it holds some, and its pattern `spare`'s when that is the one it names (what a
    /// settled expectation left, which the engine takes back from its checker), instead of
    /// two new strings and a count added to the pattern's.
    pub fn next_rendered(
        &mut self,
        plan: &Plan,
        conn: &ConnPlan,
        out: &mut String,
        spare: &mut Leftovers,
    ) -> Option<Next> {
        self.next_into(plan, conn, Some(out), spare)
    }

    fn next_into(
        &mut self,
        plan: &Plan,
        conn: &ConnPlan,
        out: Option<&mut String>,
        spare: &mut Leftovers,
    ) -> Option<Next> {
        if let Some(next) = self.explicit.as_mut() {
            let action = conn.actions.get(*next)?.clone();
            *next += 1;
            self.yielded += 1;
            return Some(Next::Action(action));
        }
        // Counted first, the answer then returned as it came: re-wrapping it copied the
        // whole `Next` (an `ExpectPlan`, ~180 bytes) once more per step.
        self.yielded += 1;
        let next = self.next_scripted(plan, conn, out, spare);
        if next.is_none() {
            self.yielded -= 1;
        }
        next
    }

    fn next_scripted(
        &mut self,
        plan: &Plan,
        conn: &ConnPlan,
        out: Option<&mut String>,
        spare: &mut Leftovers,
    ) -> Option<Next> {
        // Who the connection is, from the cursor's own copy: the plan's entry for it is one
        // more cache line per step.
        let me = self.me;
        let script = plan.scripts.get(me.group as usize)?;
        if !self.started {
            return Some(self.begin(plan, conn, script));
        }
        // The outer loop finds the list the innermost frame walks; the inner one walks it,
        // into the loop's next iteration too (the same list: in a `repeat`'s steady state
        // the list is looked up once per call, not once more per iteration).
        loop {
            let list = steps_at(script, &self.frames);
            loop {
                let top = self.frames.last_mut()?;
                if top.pace_due {
                    top.pace_due = false;
                    let every = top.every.unwrap_or_default();
                    return Some(Next::Action(Action::PaceAt(every.saturating_mul(top.iter))));
                }
                let Some(step) = list.get(top.next) else {
                    top.iter += 1;
                    if top.iter < top.times {
                        top.next = 0;
                        top.flat = top.flat.saturating_add(1);
                        top.pace_due = top.every.is_some();
                        continue;
                    }
                    self.frames.pop();
                    break;
                };
                let index = top.next;
                top.next += 1;
                let flat = top.flat;
                // The steps of a loop's steady state here; every other kind out of line
                // (`other_step`), so that this code, run per message, stays small.
                match step {
                    Step::Repeat {
                        times,
                        steps: _,
                        every,
                    } => {
                        if *times > 0 {
                            self.frames.push(Frame {
                                step: index,
                                next: 0,
                                iter: 0,
                                times: *times,
                                flat: flat.saturating_mul(u64::from(*times)),
                                every: *every,
                                pace_due: every.is_some(),
                            });
                        }
                        if every.is_some() {
                            return Some(Next::Action(Action::PaceStart));
                        }
                        // A new innermost list (or the same one, for a loop of no times).
                        break;
                    }
                    Step::Send { template } => {
                        self.run += 1;
                        let compiled = self.templates.as_deref().and_then(|t| t.find(template));
                        let (Some(out), Some(compiled)) = (out, compiled) else {
                            return Some(self.send_general(plan, template, index, flat));
                        };
                        // Most templates read only the counters: no look-up of the group's
                        // name nor of its feed for them.
                        let vars = if compiled.reads_names() {
                            vars_of(plan, me, compiled.reads_sub())
                        } else {
                            template::Vars {
                                user: me.user,
                                conn: me.id,
                                group: "",
                                sub: "",
                                feed: None,
                            }
                        };
                        // Into the cursor's own slot list, borrowed beside the frames
                        // (taking it out and putting it back moved and dropped a vector per
                        // send). Templates without `{{random}}`/`{{uuid}}` (most) never read
                        // their stream: it is keyed only when a draw is made.
                        compiled.render(
                            &vars,
                            self.run,
                            &mut LazyRng::new(plan.seed, me.id, (&self.frames, index), flat),
                            out,
                            &mut self.slots,
                        );
                        for (at, key) in compiled.keys() {
                            let value = match key {
                                Key::Const(v) => v.as_str(),
                                Key::Slot(i) => self.slots.get(*i).map_or("", String::as_str),
                            };
                            remember(
                                (self.last_values.as_mut_slice(), &mut self.older),
                                (self.keep_older, self.run),
                                *at,
                                value,
                            );
                        }
                        // The message is in `out`.
                        return Some(Next::Rendered);
                    }
                    Step::Expect(expect) => {
                        let mut next = self.expect(expect, &|| vars_of(plan, me, true), spare);
                        // Paced (open model): the schedule goes on whatever the server does.
                        next.wait &= !self.frames.iter().any(|f| f.every.is_some());
                        return Some(Next::Expect(next));
                    }
                    other => {
                        if let Some(next) = self.other_step(plan, script, other, index, flat) {
                            return Some(next);
                        }
                    }
                }
            }
        }
    }

    /// A send whose template is not compiled, or walked without a buffer to render into:
    /// expanded as a message. Out of line, as [`Cursor::send_expanded`].
    #[inline(never)]
    fn send_general(
        &mut self,
        plan: &Plan,
        template: &serde_json::Value,
        index: usize,
        flat: u64,
    ) -> Next {
        let me = self.me;
        let mut rng = LazyRng::new(plan.seed, me.id, (&self.frames, index), flat);
        let message = expand(template, &vars_of(plan, me, true), self.run, &mut rng);
        self.send_expanded(message)
    }

    /// The action of `step` (at `index` of the innermost list, iteration `flat`), a kind
    /// other than a loop, a send or an expectation; `None` for a step that yields nothing
    /// (a rendezvous without its point, an `abort_handshake` past the start). Out of line:
    /// `next_scripted` runs per message, and these few times a connection or per think.
    #[inline(never)]
    fn other_step(
        &mut self,
        plan: &Plan,
        script: &[Step],
        step: &Step,
        index: usize,
        flat: u64,
    ) -> Option<Next> {
        let me = self.me;
        let draw = |site: u64| draw_rng(plan.seed, me.id, site, flat);
        match step {
            Step::SendBinary { base64 } => {
                self.run += 1;
                Some(Next::Action(Action::SendBinary {
                    base64: base64.clone(),
                }))
            }
            Step::Ping { payload, within } => Some(Next::Action(Action::Ping {
                payload: payload.clone(),
                within: *within,
            })),
            Step::SendText { template } => {
                self.run += 1;
                let mut rng = LazyRng::new(plan.seed, me.id, (&self.frames, index), flat);
                let text =
                    template::expand_text(template, &vars_of(plan, me, true), self.run, &mut rng);
                Some(Next::Action(Action::SendText { text }))
            }
            Step::Think { dist } => Some(Next::Action(Action::Think(sample(
                dist,
                &mut draw(site_of(&self.frames, index)),
            )))),
            Step::PauseReads { dist } => Some(Next::Action(Action::PauseReads(sample(
                dist,
                &mut draw(site_of(&self.frames, index)),
            )))),
            Step::Close { code } => Some(Next::Action(Action::Close { code: *code })),
            Step::Rendezvous { .. } => {
                // The point is the group's k-th rendezvous step in script order; the
                // meeting, this iteration of the loops around it. A hand-edited plan
                // without the point (`Plan::check` refuses it) just does not wait.
                let step = rendezvous_before(script, &self.frames, index);
                let point = u32::try_from(step)
                    .ok()
                    .and_then(|step| plan.rendezvous_point(me.group, step))?;
                Some(Next::Action(Action::Rendezvous {
                    point,
                    iteration: flat,
                }))
            }
            Step::Reconnect { after, backoff } => Some(Next::Action(Action::Reconnect {
                after: sample(after, &mut draw(site_of(&self.frames, index))),
                backoff: backoff.clone(),
            })),
            // Validation only allows it first, where the start turned it into the connect.
            Step::AbortHandshake { .. } => None,
            // Taken by `next_scripted` itself.
            Step::Repeat { .. } | Step::Send { .. } | Step::Expect(_) => None,
        }
    }

    /// A send whose template is not compiled (a repro's, a plan made without templates),
    /// `message` as expanded: its correlated values remembered. Out of line: the compiled
    /// sends `next_scripted` renders are the per-message path.
    #[inline(never)]
    fn send_expanded(&mut self, message: serde_json::Value) -> Next {
        for (at, path) in self.correlated.iter().enumerate() {
            if let Some(v) = lookup(&message, path) {
                let value = super::json_key(v);
                let kept = (self.last_values.as_mut_slice(), &mut self.older);
                remember(kept, (self.keep_older, self.run), at, &value);
            }
        }
        Next::Action(Action::Send { message })
    }

    /// The script's first step: the connect (or the handshake it aborts), with the
    /// cursor's per-connection state set up. Out of line: once per connection, and
    /// `next_scripted` runs per step.
    #[cold]
    #[inline(never)]
    fn begin(&mut self, plan: &Plan, conn: &ConnPlan, script: &[Step]) -> Next {
        self.started = true;
        self.correlated = match &self.templates {
            Some(t) => t.correlated.clone(),
            None => plan.correlate_fields(conn).into(),
        };
        self.last_values = vec![String::new(); self.correlated.len()];
        self.keep_older = deepest_pairing(script);
        let mut root = Frame {
            step: 0,
            next: 0,
            iter: 0,
            times: 1,
            flat: 0,
            every: None,
            pace_due: false,
        };
        let first = match script.first() {
            Some(Step::AbortHandshake { after, how }) => {
                root.next = 1;
                let mut rng = draw_rng(plan.seed, self.me.id, site([0]), 0);
                Action::AbortHandshake {
                    after: sample(after, &mut rng),
                    rst: *how == AbortHow::Rst,
                }
            }
            _ => Action::Connect,
        };
        self.frames.push(root);
        Next::Action(first)
    }

    /// This connection's copy of a script pattern (see [`Cursor::patterns`]), when it made
    /// one: `spare`'s, when it holds that copy (handed on: no count added).
    fn kept_copy(
        &self,
        shared: &Arc<[PatternItem]>,
        spare: &mut Option<Arc<[PatternItem]>>,
    ) -> Option<Arc<[PatternItem]>> {
        let addr = shared.as_ptr() as usize;
        let (_, own) = self.patterns.iter().find(|(a, _)| *a == addr)?;
        if spare.as_ref().is_some_and(|back| Arc::ptr_eq(back, own)) {
            if let Some(back) = spare.take() {
                return Some(back);
            }
        }
        Some(own.clone())
    }

    /// Makes this connection's copy of a script pattern without placeholders, once.
    #[cold]
    #[inline(never)]
    fn copy_pattern(&mut self, shared: &Arc<[PatternItem]>) -> Arc<[PatternItem]> {
        let own: Arc<[PatternItem]> = shared.iter().cloned().collect();
        self.patterns.push((shared.as_ptr() as usize, own.clone()));
        own
    }

    /// The expectation as it applies now: its correlation value from the latest send (or
    /// the earlier one it pairs with), and the placeholders of its pattern and field tests
    /// expanded (those draw nothing; `{{$name}}` captures stay for the checker), `{{run}}`
    /// as the counter of the send it pairs with: a pipelined burst's answers each test
    /// their own request's values.
    fn expect<'v>(
        &mut self,
        expect: &Expect,
        vars: &dyn Fn() -> template::Vars<'v>,
        spare: &mut Leftovers,
    ) -> ExpectPlan {
        let mut run = self.run;
        let correlate = expect.correlate.as_ref().map(|field| {
            let (value, paired_run) = self
                .correlated
                .iter()
                .position(|path| path == field)
                .map_or(("", None), |at| {
                    self.sent_value(at, self.earlier_send(expect))
                });
            run = paired_run.unwrap_or(run);
            // Written into a settled expectation's strings when there are some.
            let (mut f, mut v) = spare.correlate.take().unwrap_or_default();
            f.clear();
            // The answers carry it at the reply's path when the scenario names one.
            f.push_str(expect.correlate_reply.as_deref().unwrap_or(field));
            v.clear();
            v.push_str(value);
            (f, v)
        });
        // Most patterns name fixed kinds: the step's items are copied once per connection,
        // not per iteration (looked for first: a kept copy has no placeholder to scan for).
        let pattern = match self.kept_copy(&expect.pattern, &mut spare.pattern) {
            Some(own) => own,
            None if expect
                .pattern
                .iter()
                .any(|i| i.event.as_bytes().contains(&b'{')) =>
            {
                expanded_pattern(&expect.pattern, &vars(), run)
            }
            None => self.copy_pattern(&expect.pattern),
        };
        // Field tests, captures and names are rare: made out of line, so that the code
        // every expectation runs stays small (it is on the per-message path).
        let rare = !expect.checks.is_empty()
            || !expect.capture.is_empty()
            || expect.name.is_some()
            || expect.correlate_reply.is_some()
            || expect.pushed;
        ExpectPlan {
            pattern,
            correlate,
            within: expect.within,
            wait: expect.wait,
            absent: expect.absent,
            rare: rare.then(|| rare_of(expect, &vars(), run)),
        }
    }

    /// Which earlier send `expect` takes its value from at this iteration of the loop
    /// around it ([`Expect::earlier_send`], less [`Expect::earlier_send_step`] per
    /// iteration, at least 0: the latest).
    fn earlier_send(&self, expect: &Expect) -> u8 {
        if expect.earlier_send_step == 0 {
            return expect.earlier_send;
        }
        let iteration = self.frames.last().map_or(0, |f| u64::from(f.iter));
        let fewer = u64::from(expect.earlier_send_step).saturating_mul(iteration);
        let back = u64::from(expect.earlier_send).saturating_sub(fewer);
        u8::try_from(back).unwrap_or(u8::MAX)
    }

    /// The value of correlated path `at` in the latest send that had it (`back` 0), or in
    /// the `back`-th before that, with that earlier send's `{{run}}`; the oldest kept when
    /// fewer were sent.
    fn sent_value(&self, at: usize, back: u8) -> (&str, Option<u64>) {
        let latest = self.last_values.get(at).map_or("", String::as_str);
        if back == 0 {
            return (latest, None);
        }
        let mut kept = self.older.iter().filter(|(i, _, _)| *i == at);
        // The oldest kept when fewer were sent.
        let oldest = kept.clone().next();
        kept.nth_back(usize::from(back))
            .or(oldest)
            .map_or((latest, None), |(_, v, run)| (v.as_str(), Some(*run)))
    }

    /// Whether one of this connection's latest sends carried `value` at a path the script
    /// correlates on: the latest send that had each path, and those kept for pairing with
    /// earlier sends. What a value an answer holds where another request's should be is
    /// checked against (an answer come to the wrong request, or a path misread).
    pub fn sent_lately(&self, value: &str) -> bool {
        self.last_values.iter().any(|v| v == value) || self.older.iter().any(|(_, v, _)| v == value)
    }

    /// The actions after the one in progress, up to (not including) the first for which
    /// `stop` holds, at most `cap` of them; the cursor itself does not move.
    pub fn ahead(
        &self,
        plan: &Plan,
        conn: &ConnPlan,
        cap: usize,
        stop: impl Fn(&Action) -> bool,
    ) -> Vec<Action> {
        let mut probe = self.clone();
        let mut out = Vec::new();
        while out.len() < cap {
            match probe.next(plan, conn) {
                Some(a) if !stop(&a) => out.push(a),
                _ => break,
            }
        }
        out
    }
}

/// `text` with its placeholders expanded (a text without `{` as it is).
fn expanded_text(t: &str, vars: &template::Vars<'_>, run: u64) -> String {
    if t.as_bytes().contains(&b'{') {
        template::expand_text(t, vars, run, &mut NoRng)
    } else {
        t.to_string()
    }
}

/// A pattern whose kinds hold placeholders, expanded for this expectation.
#[cold]
#[inline(never)]
fn expanded_pattern(
    items: &[PatternItem],
    vars: &template::Vars<'_>,
    run: u64,
) -> Arc<[PatternItem]> {
    items
        .iter()
        .map(|item| PatternItem {
            event: expanded_text(&item.event, vars, run),
            repeat: item.repeat,
        })
        .collect()
}

/// What few expectations have: field tests (placeholders expanded), captures, a name, and
/// where the send carries the correlation value.
#[cold]
#[inline(never)]
fn rare_of(expect: &Expect, vars: &template::Vars<'_>, run: u64) -> Box<ExpectRare> {
    let checks = expect
        .checks
        .iter()
        .map(|t| FieldTest {
            path: expanded_text(&t.path, vars, run),
            test: match &t.test {
                Test::Equals(v) => Test::Equals(expand(v, vars, run, &mut NoRng)),
                Test::Matches(p) => Test::Matches(expanded_text(p, vars, run)),
                other => other.clone(),
            },
        })
        .collect();
    Box::new(ExpectRare {
        correlate_sent: expect
            .correlate_reply
            .is_some()
            .then(|| expect.correlate.as_deref().map(Box::from))
            .flatten(),
        checks,
        capture: expect.capture.clone(),
        name: expect.name.clone(),
        pushed: expect.pushed,
        fresh: expect.fresh,
    })
}

/// Records `value` as correlated path `at`'s latest sent value in `latest`, sent by the
/// send counted `run`; kept in `older` too, with its `run`, when the script pairs
/// expectations with earlier sends (`keep` + 1 per path at most: the latest and `keep`
/// before it).
fn remember(
    (latest, older): (&mut [String], &mut Vec<(usize, String, u64)>),
    (keep, run): (u8, u64),
    at: usize,
    value: &str,
) {
    let Some(last) = latest.get_mut(at) else {
        return;
    };
    if keep > 0 {
        let kept = older.iter().filter(|(i, _, _)| *i == at).count();
        if kept > usize::from(keep) {
            if let Some(oldest) = older.iter().position(|(i, _, _)| *i == at) {
                older.remove(oldest);
            }
        }
        older.push((at, value.to_string(), run));
    }
    // In place: no new string per send once it has room.
    last.clear();
    last.push_str(value);
}

/// The largest [`Expect::earlier_send`] in `script`, loops included.
fn deepest_pairing(script: &[Step]) -> u8 {
    crate::model::deep_steps(script)
        .map(|s| match s {
            Step::Expect(e) => e.earlier_send,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// The placeholder values of connection `me` (`with_sub`: the token's `sub` too, one more
/// cache line that few templates read).
fn vars_of(plan: &Plan, me: Whose, with_sub: bool) -> template::Vars<'_> {
    template::Vars {
        user: me.user,
        conn: me.id,
        group: plan
            .groups
            .get(me.group as usize)
            .map_or("", String::as_str),
        sub: if with_sub {
            plan.tokens
                .get(me.token as usize)
                .map_or("", |t| t.sub.as_str())
        } else {
            ""
        },
        feed: plan.feed_of_user(me.group, me.user),
    }
}

/// The list of steps the innermost frame walks.
fn steps_at<'s>(script: &'s [Step], frames: &[Frame]) -> &'s [Step] {
    let mut list = script;
    for frame in frames.iter().skip(1) {
        match list.get(frame.step) {
            Some(Step::Repeat { steps, .. }) => list = steps,
            _ => return &[],
        }
    }
    list
}

/// How many `rendezvous` steps come before the step at `index` of the innermost frame's
/// list, in script order (depth first): that step's number among its group's points.
fn rendezvous_before(script: &[Step], frames: &[Frame], index: usize) -> usize {
    let count = |steps: &[Step]| {
        crate::model::deep_steps(steps)
            .filter(|s| matches!(s, Step::Rendezvous { .. }))
            .count()
    };
    let path: Vec<usize> = frames
        .iter()
        .skip(1)
        .map(|f| f.step)
        .chain([index])
        .collect();
    let mut list = script;
    let mut before = 0;
    for (depth, &at) in path.iter().enumerate() {
        before += count(list.get(..at).unwrap_or(list));
        if depth + 1 < path.len() {
            match list.get(at) {
                Some(Step::Repeat { steps, .. }) => list = steps,
                _ => break,
            }
        }
    }
    before
}

/// Every action of `conn`, expanded, or `None` when there are more than `cap` (for
/// shrinking, which edits actions one by one, and for tests).
pub fn expand_conn(plan: &Plan, conn: &ConnPlan, cap: usize) -> Option<Vec<Action>> {
    if plan.actions_of(conn) > cap as u64 {
        return None;
    }
    let mut cursor = Cursor::new(conn);
    let mut out = Vec::new();
    while let Some(action) = cursor.next(plan, conn) {
        if out.len() >= cap {
            return None;
        }
        out.push(action);
    }
    Some(out)
}
