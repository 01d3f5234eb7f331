//! TOML → [`Scenario`], with file:line:column on every problem.
//!
//! The file is parsed with toml's spanned document API and walked by hand rather than
//! through serde: serde stops at the first error, and a user fixing a scenario wants every
//! problem at once. The walk records problems and carries on with defaults; the result is
//! returned only when nothing was recorded. The format is documented in `docs/scenarios.md`.

mod answer;
mod auth;
pub(super) mod battery;
mod brackets;
mod dist;
mod env;
mod group;
mod hunt;
mod kinds;
pub mod locate;
mod placement;
mod session;
mod source;
mod steps;
mod template;
mod thresholds;
mod tokens;
mod walk;

#[cfg(test)]
mod tests;

pub use dist::{parse_dist, parse_duration};
pub use steps::pair_again;
pub use thresholds::parse_metric;

use crate::model::{
    Limits, OracleSpec, Scenario, Step, CONNECTION_BYTES_ESTIMATE, MAX_CONNECTIONS,
};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use walk::{Ctx, Fields, Node};

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "target",
    "auth",
    "limits",
    "oracles",
    "group",
    "thresholds",
    "hunt",
    "battery",
    "answer",
];
const LIMITS_KEYS: &[&str] = &[
    "max_message_bytes",
    "handshake_timeout",
    "send_timeout",
    "max_in_flight",
];
const ORACLE_KEYS: &[&str] = &[
    "type_field",
    "error_event",
    "identity",
    "sequence",
    "max_buffered",
    "max_buffered_bytes",
    "exclusive",
    "liveness",
    "reject",
    "idle_timeout",
    "idle_close",
    "max_lifetime",
    "consistency",
    "accepted",
    "kinds",
    "record_separator",
    "framing",
    "embedded_json",
    "batched",
    "learn",
];
const DEFAULT_SEED: i128 = 1;
const MIN_MESSAGE_BYTES: i128 = 1024;
/// Enough for a few buffered messages with their correlation values.
const MIN_BUFFERED_BYTES: i128 = 1024;
/// The most a per-connection byte bound (`max_message_bytes`, `max_buffered_bytes`) may
/// be: 1 GiB, what one connection may hold of a server's messages. Past it the bound
/// bounds nothing a machine has (a thousand connections, a terabyte).
const MAX_CONNECTION_BYTES: i128 = 1 << 30;
/// The most a per-connection count (`max_buffered` messages, `max_in_flight`
/// expectations) may be, for the same reason.
const MAX_CONNECTION_COUNT: i128 = 1_000_000;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Every problem, in file order; the message lists the first `PROBLEMS_SHOWN` and
    /// counts the rest.
    #[error("{}", problems_text(problems))]
    Invalid { problems: Vec<Problem> },
    /// The file is a repro (JSON, written by `stampede hunt`), not a scenario.
    #[error(
        "{path} is a repro file (JSON written by stampede hunt), not a scenario: a scenario \
         is TOML. Replay it with `stampede replay {path}`, or minimize it with \
         `stampede shrink {path}`"
    )]
    Repro { path: String },
    /// The file is JSON of some other kind; scenarios are TOML.
    #[error(
        "{path} holds JSON, but a scenario is TOML (see docs/scenarios.md); a repro file \
         goes to `stampede replay`, a run's result files to `stampede report` or `compare`"
    )]
    Json { path: String },
}

impl ScenarioError {
    /// What went wrong, as a word for machines (the `type` of its JUnit error):
    /// `scenario_unreadable`, `scenario_invalid` or `scenario_not_toml`.
    pub fn kind(&self) -> &'static str {
        match self {
            ScenarioError::Io { .. } => "scenario_unreadable",
            ScenarioError::Invalid { .. } => "scenario_invalid",
            ScenarioError::Repro { .. } | ScenarioError::Json { .. } => "scenario_not_toml",
        }
    }
}

/// Fields every repro file carries (what `stampede hunt` writes): a JSON object with all of
/// them is taken for one. `hunt::repro`'s tests check a written repro has each.
pub(crate) const REPRO_FIELDS: [&str; 5] =
    ["version", "scenario_hash", "oracle", "evidence", "plan"];

/// A scenario error for a file that is JSON rather than TOML, naming what it is, or `None`
/// when `text` does not parse as a JSON object or array (no TOML file does, though one may
/// start with `[`).
fn json_instead(text: &str, path: &str) -> Option<ScenarioError> {
    if !text.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let path = path.to_string();
    match value.as_object() {
        Some(object) if REPRO_FIELDS.iter().all(|f| object.contains_key(*f)) => {
            Some(ScenarioError::Repro { path })
        }
        _ => Some(ScenarioError::Json { path }),
    }
}

/// How many problems a [`ScenarioError::Invalid`] message lists; the rest are counted.
pub const PROBLEMS_SHOWN: usize = 100;

/// `file:line:column: message` lines, the first [`PROBLEMS_SHOWN`] of them, then how many
/// more there are.
fn problems_text(problems: &[Problem]) -> String {
    let mut text = String::new();
    for (i, p) in problems.iter().take(PROBLEMS_SHOWN).enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let _ = write!(text, "{}:{}:{}: {}", p.file, p.line, p.column, p.message);
    }
    if problems.len() > PROBLEMS_SHOWN {
        let rest = problems.len() - PROBLEMS_SHOWN;
        let plural = if rest == 1 { "" } else { "s" };
        let _ = write!(text, "\n... and {rest} more problem{plural}");
    }
    text
}

/// Reads and validates the scenario at `path`; problems name the file as given. Relative
/// paths inside it (`file = "..."`) resolve against the file's folder, and `${NAME}` in
/// its values reads the environment.
///
/// What the scenario needs from the environment it runs in (a `{ env = "NAME" }` secret's
/// variable) is not checked here: a plan can be built without it. Commands that sign
/// tokens load with [`load_file_to_run`]; `validate` with [`load_file_checked`].
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    load_file_checked(path).map(|(scenario, _)| scenario)
}

/// [`load_file`] for a command that runs the scenario (signs its tokens): what the
/// environment lacks for that (see [`load_file_checked`]) is refused too, each problem at
/// its key.
pub fn load_file_to_run(path: &Path) -> Result<Scenario, ScenarioError> {
    ScenarioFile::read(path)?.to_run()
}

/// [`load_file`], with what a run in this environment would lack: each `[auth]` key
/// source `{ env = "NAME" }` whose variable gives no value (unset with no `default`, or
/// empty), as a problem at its `env` key. The file itself is valid; whether that stops the
/// command is the command's to say (a run: yes; `validate`: a warning, since the file is
/// often checked where its secrets are deliberately absent).
pub fn load_file_checked(path: &Path) -> Result<(Scenario, Vec<Problem>), ScenarioError> {
    ScenarioFile::read(path)?.checked()
}

/// A scenario file's text, read once: a pipe or a process substitution (`/dev/stdin`,
/// `<(…)`) gives its text to the first read only, and a command that looks at a file as a
/// battery first, then as a scenario (`validate`, `hunt`), read an empty file the second
/// time ("missing required field `name`").
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    path: std::path::PathBuf,
    text: String,
}

impl ScenarioFile {
    /// Reads the file at `path`.
    ///
    /// # Errors
    /// [`ScenarioError::Io`] when it cannot be read; [`ScenarioError::Invalid`] when it is
    /// not UTF-8, at its first bad byte.
    pub fn read(path: &Path) -> Result<ScenarioFile, ScenarioError> {
        Ok(ScenarioFile {
            path: path.to_path_buf(),
            text: read_scenario_text(path)?,
        })
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The folder relative paths inside the file resolve against: the file's own
    /// (absolute, so plan and repro files keep resolved paths, and a repro replays from any
    /// working directory).
    fn base(&self) -> Option<std::path::PathBuf> {
        let folder = self.folder();
        Some(std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf()))
    }

    /// The folder holding the file, as given (`.` for a bare file name).
    fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// [`load_file_checked`] on this text.
    ///
    /// # Errors
    /// As [`load_file_checked`].
    pub fn checked(&self) -> Result<(Scenario, Vec<Problem>), ScenarioError> {
        let origin = self.path.display().to_string();
        if let Some(error) = json_instead(&self.text, &origin) {
            return Err(error);
        }
        load_in_checked(&self.text, &origin, self.base(), &env_var)
    }

    /// [`load_file_to_run`] on this text.
    ///
    /// # Errors
    /// As [`load_file_to_run`].
    pub fn to_run(&self) -> Result<Scenario, ScenarioError> {
        let (scenario, needs) = self.checked()?;
        if needs.is_empty() {
            Ok(scenario)
        } else {
            Err(ScenarioError::Invalid { problems: needs })
        }
    }

    /// [`super::load_battery_file`] on this text: the battery when the file is one.
    ///
    /// # Errors
    /// As [`super::load_battery_file`].
    pub fn battery(&self) -> Result<Option<battery::Battery>, ScenarioError> {
        // Its scenarios' paths resolve against the folder as given: a battery names them
        // in what it prints as the user wrote them.
        let base = Some(self.folder().to_path_buf());
        battery::load_battery_in(&self.text, &self.path.display().to_string(), base)
    }
}

/// The largest scenario file read, bytes: far above any written by hand or generated
/// (40,000 groups take ~2.4 MB), far below what would strain memory.
const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// The text of the scenario file at `path`. A file that is not UTF-8 is one problem at
/// its first bad byte (`bad.toml:7:14: not UTF-8 (byte 0xE9); ...`), like any other.
pub(super) fn read_scenario_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let file = path.display().to_string();
    let io = |source| ScenarioError::Io {
        path: file.clone(),
        source,
    };
    // Bounded: `/dev/zero` or a log file named by mistake would be read without end.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SCENARIO_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::Invalid {
            problems: vec![Problem {
                file,
                line: 1,
                column: 1,
                message: format!(
                    "larger than {} MiB: not a scenario (a scenario file is a few KiB of \
                     TOML; its users, repeats and feeds make the load, not its size)",
                    MAX_SCENARIO_BYTES >> 20
                ),
            }],
        });
    }
    crate::model::utf8_text(bytes).map_err(|at| ScenarioError::Invalid {
        problems: vec![Problem {
            file,
            line: at.line,
            column: at.column,
            message: format!(
                "not UTF-8 (byte 0x{:02X}); scenario files must be UTF-8",
                at.byte
            ),
        }],
    })
}

/// Validates scenario `text`; `origin` is the file name used in problems. Relative paths
/// inside it resolve against the working directory; `${NAME}` reads the environment.
pub fn load_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    load_in(text, origin, None, &env_var)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load_in(
    text: &str,
    origin: &str,
    base: Option<std::path::PathBuf>,
    lookup: env::Lookup<'_>,
) -> Result<Scenario, ScenarioError> {
    load_in_checked(text, origin, base, lookup).map(|(scenario, _)| scenario)
}

/// [`load_in`], with the problems of the environment kept apart ([`load_file_checked`]).
pub(super) fn load_in_checked(
    text: &str,
    origin: &str,
    base: Option<std::path::PathBuf>,
    lookup: env::Lookup<'_>,
) -> Result<(Scenario, Vec<Problem>), ScenarioError> {
    let mut cx = Ctx::new(origin, text).with_base(base).with_lookup(lookup);
    let (mut doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The tree toml recovers is partial; checking its meaning would report fields as
        // missing that are only unreadable, so syntax errors are reported alone.
        return Err(ScenarioError::Invalid {
            problems: syntax_problems(cx, &syntax_errors),
        });
    }
    env::expand(&mut cx, doc.get_mut(), lookup);
    let scenario = scenario(&mut cx, &doc, text);
    let deferred = cx.take_deferred();
    let problems = cx.into_problems();
    if problems.is_empty() {
        Ok((scenario, deferred))
    } else {
        Err(ScenarioError::Invalid { problems })
    }
}

/// toml keeps parsing after an error, and one mistake (say, an unclosed array) often
/// surfaces as several errors on the lines after it. Keeping one error per line, the one
/// toml found first (its structural errors come before its scalar ones), keeps the echoes
/// down; an "unclosed ..." error is always kept because it names the real cause, and is
/// also said where the bracket opened ([`unclosed_where_opened`]). What a broken table
/// header sets off is dropped too ([`drop_header_echoes`]).
fn syntax_problems(mut cx: Ctx<'_>, errors: &[toml::de::Error]) -> Vec<Problem> {
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        unclosed_where_opened(&mut cx, error.message(), span.start);
        let snippet = cx.text().get(span.clone()).unwrap_or_default();
        let message = if snippet.is_empty() || snippet.contains('\n') || snippet.len() > 40 {
            format!("invalid TOML: {}", error.message())
        } else {
            format!("invalid TOML: {} (at {snippet:?})", error.message())
        };
        cx.report(span, message);
    }
    let text = cx.text();
    let mut problems = cx.into_reported();
    problems.sort_by_key(|p| p.line);
    let mut last_line = 0;
    problems.retain(|p| {
        let keep = p.line != last_line || p.message.starts_with("invalid TOML: unclosed");
        last_line = p.line;
        keep
    });
    problems.sort_by_key(|p| (p.line, p.column));
    drop_header_echoes(text, &mut problems);
    drop_bracket_echoes(&mut problems);
    problems
}

/// Drops what toml says between an unclosed bracket and where it noticed it (a missing
/// comma on the next line, its own "unclosed ..." at the notice point) once the bracket is
/// said where it opened ([`unclosed_where_opened`]): one mistake, one problem. What comes
/// after the notice point stays. `problems` is in file order.
fn drop_bracket_echoes(problems: &mut Vec<Problem>) {
    let spans: Vec<(usize, usize, usize)> = problems
        .iter()
        .filter_map(|p| {
            let (_, noticed) = p.message.split_once("(toml noticed at ")?;
            let (line, column) = noticed.trim_end_matches(')').split_once(':')?;
            Some((p.line, line.parse().ok()?, column.parse().ok()?))
        })
        .collect();
    problems.retain(|p| {
        !spans.iter().any(|(opened, line, column)| {
            p.line > *opened && (p.line < *line || (p.line == *line && p.column <= *column))
        })
    });
}

/// For toml's "unclosed inline table" and "unclosed array" (noticed at `noticed`, often
/// lines after the mistake: a step's missing `}` shows at the steps' closing `]`), a
/// problem where the bracket opened, which is where the fix goes; nothing when it opened
/// on the line toml noticed it, or cannot be found.
fn unclosed_where_opened(cx: &mut Ctx<'_>, message: &str, noticed: usize) {
    let (open, close, what) = if message.starts_with("unclosed inline table") {
        (b'{', '}', "inline table")
    } else if message.starts_with("unclosed array,") {
        (b'[', ']', "array")
    } else {
        return;
    };
    let Some(opened) = brackets::unclosed_opener(cx.text(), noticed, open) else {
        return;
    };
    let (line, column) = cx.position(noticed);
    if cx.position(opened).0 == line {
        return;
    }
    cx.report(
        opened..opened + 1,
        format!(
            "invalid TOML: unclosed {what}: the `{}` here has no `{close}` (toml noticed at {line}:{column})",
            char::from(open)
        ),
    );
}

/// Drops the echoes of a broken table header: toml reads the keys after `[[group]` (no
/// closing bracket) into the table before it, and reports them there (`name` as a
/// duplicate key of the top level), though they are only misplaced. So an error on a
/// header line (`[` its first character) is kept, and the errors below it, up to the
/// next header line, are not. `problems` is in file order.
fn drop_header_echoes(text: &str, problems: &mut Vec<Problem>) {
    let headers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with('['))
        .map(|(index, _)| index + 1)
        .collect();
    let section_of = |line: usize| headers.iter().rev().find(|h| **h <= line).copied();
    let mut broken: Vec<usize> = Vec::new();
    problems.retain(|p| match section_of(p.line) {
        Some(header) if header == p.line => {
            broken.push(header);
            true
        }
        Some(header) => !broken.contains(&header),
        None => true,
    });
}

fn scenario(cx: &mut Ctx<'_>, doc: &toml::Spanned<DeTable<'_>>, text: &str) -> Scenario {
    let f = Fields::new(cx, doc.get_ref(), doc.span(), "the top level", TOP_KEYS)
        .with_owner("scenario");
    let seed = f.int_or(cx, "seed", 0, u64::MAX.into(), DEFAULT_SEED);
    let mut scenario = Scenario {
        name: name(cx, &f),
        description: f.opt_str(cx, "description"),
        target: target(cx, &f),
        seed: u64::try_from(seed).unwrap_or(1),
        duration: f.req_positive_duration(cx, "duration"),
        auth: auth::auth(cx, f.get("auth")),
        groups: group::groups(cx, f.get("group")),
        oracles: oracles(cx, f.get("oracles")),
        limits: limits(cx, f.get("limits")),
        thresholds: Vec::new(),
        hunt: hunt::hunt(cx, f.get("hunt")),
        answers: Vec::new(),
        hash: sha256_hex(text),
        content_hash: content_hash(text),
    };
    scenario.answers = answer::answers(cx, f.get("answer"), &scenario);
    if let Some(node) = f.get("battery") {
        cx.report(
            node.span(),
            "a [battery] file is run by `stampede hunt` (one generated scenario per race family), not as one scenario",
        );
    }
    framed_sends(cx, &f, &scenario);
    challenged_first_message(cx, &f, &scenario);
    sends_fit(cx, &f, &scenario);
    turn_names(cx, &f, &scenario.groups);
    total_connections(cx, &f, &scenario.groups);
    // Last, because `event.<type>.rate` is checked against the groups' expect steps.
    let scripts: Vec<&[Step]> = scenario.groups.iter().map(|g| g.steps.as_slice()).collect();
    scenario.thresholds = thresholds::thresholds(cx, f.get("thresholds"), &scripts);
    scenario
}

/// Every `send` as written fits `[limits] max_message_bytes`, which bounds what a
/// connection's write may hold: a larger one could not go out, and its connection would
/// end mid-script for the client's own limit. Reported at the group, naming its send.
fn sends_fit(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, scenario: &Scenario) {
    let limit = scenario.limits.max_message_bytes;
    for_each_send(cx, f, scenario, |step| {
        let bytes = match step {
            Step::Send { template } => template.to_string().len(),
            Step::SendText { template } => template.len(),
            _ => return None,
        };
        (bytes > limit).then(|| {
            format!(
                "{bytes} bytes as written, more than [limits] max_message_bytes = {limit}, \
                 which bounds what one write holds: raise it to at least {bytes}"
            )
        })
    });
}

/// Reports, at the group, what `problem` finds in each `send` or `send_text` of every
/// group, naming the group and the send (counted from 1, both kinds together).
fn for_each_send(
    cx: &mut Ctx<'_>,
    f: &Fields<'_, '_>,
    scenario: &Scenario,
    problem: impl Fn(&Step) -> Option<String>,
) {
    let span = f.get("group").map_or(0..0, Node::span);
    for group in &scenario.groups {
        let sends = crate::model::deep_steps(&group.steps)
            .filter(|step| matches!(step, Step::Send { .. } | Step::SendText { .. }));
        for (n, step) in sends.enumerate() {
            if let Some(why) = problem(step) {
                let message = format!("group {:?}, send {}: {why}", group.name, n + 1);
                cx.report(span.clone(), message);
            }
        }
    }
}

/// A first message sent `after` the server's challenge needs acceptance told by a message
/// (`[oracles] accepted = { message = "auth_ok" }`): under the upgrade or first-frame rule
/// the challenge itself (or the 101 before it) would count as the server taking a token it
/// has not yet seen. Reported at `[auth]`, or at the group whose placement it is.
fn challenged_first_message(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, scenario: &Scenario) {
    use crate::model::{AcceptRule, Placement};
    let accepted_by = match &scenario.oracles.session.accepted {
        AcceptRule::Message { event } => Some(event.as_str()),
        _ => None,
    };
    let challenged = |p: &Placement| -> Option<String> {
        match p {
            Placement::FirstMessage {
                after: Some(kind), ..
            } => Some(kind.clone()),
            _ => None,
        }
    };
    let at_auth = challenged(&scenario.auth.placement).map(|kind| ("auth".to_string(), kind));
    let at_groups = scenario.groups.iter().filter_map(|g| {
        let kind = g.placement.as_ref().and_then(challenged)?;
        Some((format!("group {:?}", g.name), kind))
    });
    for (place, kind) in at_auth.into_iter().chain(at_groups) {
        let key = if place == "auth" { "auth" } else { "group" };
        let span = f.get(key).map_or(0..0, Node::span);
        let message = match accepted_by {
            Some(event) if event != kind => continue,
            // The challenge comes before the token: no sign the server took it.
            Some(_) => format!(
                "{place}: [oracles] accepted = {{ message = {kind:?} }} names the challenge \
                 the first message waits for (after = {kind:?}): it comes before the server \
                 has the token; name the kind the server accepts with (Home Assistant's \
                 \"auth_ok\")"
            ),
            None => format!(
                "{place}: placement's first message waits for the server's {kind:?}, so the \
                 upgrade and the first frame (that {kind:?}) come before the server has the \
                 token and cannot say it took it: set [oracles] accepted = {{ message = \
                 \"...\" }} to the kind the server accepts with (Home Assistant's \"auth_ok\")"
            ),
        };
        cx.report(span, message);
    }
}

/// Under a framing, every `send` must be one of its packets: Socket.IO's an array
/// `[event, …]` or a table with a string `type`, its ack `id` a number (a string of
/// digits that may start with 0, or a prefix, would go out without an id, or with
/// another one than the answers are correlated on); STOMP's a table with the command in
/// `type`. Reported at the group, naming its step.
fn framed_sends(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, scenario: &Scenario) {
    use crate::model::Framing;
    let framing = scenario.oracles.framing;
    if framing.is_plain() {
        return;
    }
    for_each_send(cx, f, scenario, |step| match (step, framing) {
        (Step::Send { template }, Framing::SocketIo) => socket_io_send_problem(template),
        (Step::Send { template }, Framing::Stomp) => stomp_send_problem(template),
        (Step::SendText { template }, Framing::Stomp) => stomp_text_problem(template),
        _ => None,
    });
    // A `first_text` is a frame as written (a STOMP CONNECT frame spelled out), as a
    // `send_text` is.
    if let (
        Framing::Stomp,
        crate::model::Placement::FirstMessage {
            template,
            text: false,
            ..
        },
    ) = (framing, &scenario.auth.placement)
    {
        if let Some(why) = stomp_send_problem(template) {
            let span = f.get("auth").map_or(0..0, Node::span);
            cx.report(span, format!("auth.placement.first_message: {why}"));
        }
    }
}

/// What makes a `send_text` under `framing = "stomp"` no STOMP frame: a frame spelled out
/// ends with the NUL octet (STOMP 1.2, "Frames"), without which the broker waits for the
/// rest of it and answers nothing, which a run would read as the broker losing every
/// answer. A heart-beat, an end of line alone (`"\n"`, `"\r\n"`), is no frame and needs
/// none.
fn stomp_text_problem(text: &str) -> Option<String> {
    let heart_beat = !text.is_empty() && text.chars().all(|c| c == '\n' || c == '\r');
    (!heart_beat && !text.ends_with('\0')).then(|| {
        "with framing = \"stomp\" a send_text is a whole STOMP frame, ending with the NUL \
         that ends every frame (\"\\u0000\"), or a heart-beat (\"\\n\"); a `send` table \
         (`type` = the command) is written with it"
            .to_string()
    })
}

/// What makes `template` no Socket.IO packet a `send` can write.
fn socket_io_send_problem(template: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let is_event_array = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.first().is_some_and(Value::is_string))
    };
    let Some(map) = template.as_object() else {
        return (!is_event_array(template)).then(|| {
            "with framing = \"socket.io\" a send is an array [\"event\", args…] or a table \
             with a string `type`"
                .to_string()
        });
    };
    if !map.get("type").is_some_and(Value::is_string) {
        return Some(
            "with framing = \"socket.io\" a send table names its packet or event in a string \
             `type`"
                .into(),
        );
    }
    if let Some(other) = map
        .keys()
        .find(|k| !["type", "data", "id", "nsp"].contains(&k.as_str()))
    {
        return Some(format!(
            "a Socket.IO send table takes type, data, id and nsp; {other:?} would not go out \
             (an event's arguments go in data)"
        ));
    }
    let id_ok = match map.get("id") {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.is_u64(),
        Some(Value::String(s)) => {
            let whole_placeholder = ["{{run}}", "{{run:int}}", "{{conn}}", "{{user}}"]
                .contains(&s.replace(' ', "").as_str());
            let digits = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            whole_placeholder || digits
        }
        Some(_) => false,
    };
    (!id_ok).then(|| {
        format!(
            "a Socket.IO ack id is a number: write id = \"{{{{run}}}}\" or a number, not {}",
            map.get("id").map_or_else(String::new, |v| v.to_string())
        )
    })
}

/// The frames a STOMP 1.2 client sends (STOMP 1.2, "Client Frames"): a `send` of another
/// command is a typo the broker answers with an ERROR.
const STOMP_CLIENT_COMMANDS: [&str; 11] = [
    "CONNECT",
    "STOMP",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
];

/// What makes `template` no STOMP frame a `send` can write, or a CONNECT that promises
/// the broker heart-beats (`heart-beat: cx,cy` with cx > 0): stampede sends none, and the
/// broker would end the connection for their absence, a close no server is to blame for.
fn stomp_send_problem(template: &serde_json::Value) -> Option<String> {
    let ok = template
        .as_object()
        .is_some_and(|m| m.get("type").is_some_and(serde_json::Value::is_string));
    if !ok {
        return Some(
            "with framing = \"stomp\" a send is a table with the command in `type` (and \
             `headers`, `body`)"
                .into(),
        );
    }
    let command = template.get("type").and_then(serde_json::Value::as_str);
    if let Some(unknown) = command.filter(|c| !STOMP_CLIENT_COMMANDS.contains(c)) {
        return Some(format!(
            "{unknown:?} is no STOMP 1.2 client frame ({}){}",
            STOMP_CLIENT_COMMANDS.join(", "),
            crate::model::words::did_you_mean(unknown, STOMP_CLIENT_COMMANDS)
        ));
    }
    let beats = template
        .pointer("/headers/heart-beat")
        .and_then(serde_json::Value::as_str)?;
    let promised = beats
        .split(',')
        .next()
        .and_then(|cx| cx.trim().parse::<u64>().ok())
        .unwrap_or(0);
    (matches!(command, Some("CONNECT" | "STOMP")) && promised > 0).then(|| {
        format!(
            "heart-beat = {beats:?} promises the broker a heart-beat every {promised} ms, \
             which stampede does not send (the broker would close the connection): ask for \
             none from the client, heart-beat = \"0,N\" (the broker's own are read and skipped)"
        )
    })
}

/// At most [`MAX_TURN_NAMES`](crate::model::MAX_TURN_NAMES) distinct `expect` names: each
/// is a histogram in every run's results.
fn turn_names(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, groups: &[crate::model::Group]) {
    let mut names: Vec<String> = Vec::new();
    for step in groups
        .iter()
        .flat_map(|g| crate::model::deep_steps(&g.steps))
    {
        if let Step::Expect(crate::model::Expect { name: Some(n), .. }) = step {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    if names.len() > crate::model::MAX_TURN_NAMES {
        let message = format!(
            "{} distinct expect names; at most {} (each is a latency histogram)",
            names.len(),
            crate::model::MAX_TURN_NAMES
        );
        let span = f.get("group").map_or(0..0, Node::span);
        cx.report(span, message);
    }
}

/// Refuses more connections over all groups than a plan holds (each group alone was
/// checked where it was read).
fn total_connections(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, groups: &[crate::model::Group]) {
    let conns = groups
        .iter()
        .map(|g| u64::from(g.users) * u64::from(g.connections_per_user))
        .fold(0u64, u64::saturating_add);
    let each_fits = groups
        .iter()
        .all(|g| u64::from(g.users) * u64::from(g.connections_per_user) <= MAX_CONNECTIONS);
    if conns > MAX_CONNECTIONS && each_fits {
        let span = f.get("group").map_or(0..0, Node::span);
        cx.report(
            span,
            format!(
                "the groups add up to {conns} connections; a scenario holds at most \
                 {MAX_CONNECTIONS} (about {} KiB each while open)",
                CONNECTION_BYTES_ESTIMATE / 1024
            ),
        );
    }
}

/// The name becomes a results directory, so it is held to a portable file-name alphabet.
fn name(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> String {
    let name = f.req_text(cx, "name");
    let portable = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let only_dots = !name.is_empty() && name.chars().all(|c| c == '.');
    if let (Some(node), false) = (f.get("name"), portable && !only_dots) {
        let message = format!(
            "name {name:?} names the results directory; use letters, digits, \".\", \"_\" and \"-\" \
             (not only dots)"
        );
        cx.report(node.span(), message);
    }
    name
}

fn target(cx: &mut Ctx<'_>, f: &Fields<'_, '_>) -> Option<String> {
    let node = f.get("target")?;
    let url = cx.string("target", node)?;
    let written = written_url(cx, node, url);
    // Checked as the dialer will dial it: a `${PW}` in the userinfo expands
    // percent-encoded, so a `/` in its value does not end the host.
    let dialled = cx.dial_url(&written, url);
    let rest = dialled
        .strip_prefix("ws://")
        .or_else(|| dialled.strip_prefix("wss://"));
    // The path and query take the connection's placeholders, filled as each dials; the
    // host and port are resolved once for the run and take none.
    let in_authority = crate::model::url::placeholder_in_authority(&written);
    if rest.is_none_or(str::is_empty) {
        // A password written in the URL is shown masked, as everywhere.
        let shown = crate::model::url::shown_url(url);
        cx.report(
            node.span(),
            format!("target: expected a ws:// or wss:// URL, found {shown:?}"),
        );
    } else if let Some((at, found)) = in_authority {
        // Said instead of what the port check would make of `:{{conn}}`.
        let message = crate::model::url::authority_placeholder_message(found);
        let span = template::offset_in(cx, &node.span(), &written, at);
        cx.report(span, format!("target: {message}"));
    } else if let Err(reason) = crate::model::url::explicit_port(&dialled) {
        cx.report(node.span(), format!("target: {reason}"));
    } else if let Some(reason) = crate::model::url::fragment_problem(&dialled) {
        cx.report(node.span(), format!("target: {reason}"));
    } else if let Some(reason) = crate::model::url::authority_problem(&dialled) {
        // What the dialer would refuse only at the run's start.
        let shown = crate::model::url::shown_url(url);
        cx.report(
            node.span(),
            format!("target: {reason}: expected ws://HOST[:PORT]/PATH, found {shown:?}"),
        );
    }
    if let (None, Some(at)) = (in_authority, crate::model::url::path_start(&written)) {
        // Checked as the path alone, pointed at where it is in the file when the URL is
        // written verbatim: the span then starts one character before the path, where
        // `check_placeholders` expects the string's opening quote.
        let span = node.span();
        let raw = cx.text().get(span.clone()).unwrap_or_default();
        let verbatim =
            raw.len() == written.len() + 2 && raw.get(1..raw.len() - 1) == Some(written.as_str());
        let path_span = if verbatim {
            span.start + at..span.end
        } else {
            span
        };
        template::check_placeholders(
            cx,
            path_span,
            &written[at..],
            crate::model::url::TARGET_PLACEHOLDERS,
            "target",
        );
    }
    Some(written)
}

/// A URL as the scenario wrote it: its `${NAME}` references unexpanded, so that no
/// result, plan, repro or message holds their values (the dialer expands them:
/// [`crate::model::url::dial_url`]). A URL that named no variable keeps a `${` it holds
/// (written `$${`) escaped, so that expanding it gives it back.
fn written_url(cx: &Ctx<'_>, node: &Node<'_>, url: &str) -> String {
    match cx.env_text(node, url) {
        crate::model::EnvText::Env { written, .. } => written,
        crate::model::EnvText::Plain(url) => url.replace("${", "$${"),
        // `env_text` makes no secret: only a credential header's caller does.
        secret @ crate::model::EnvText::Secret(_) => secret.as_str().replace("${", "$${"),
    }
}

fn limits(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Limits {
    let defaults = Limits::default();
    let Some(f) = Fields::section(cx, node, "[limits]", LIMITS_KEYS) else {
        return defaults;
    };
    let bytes = f.int_or(
        cx,
        "max_message_bytes",
        MIN_MESSAGE_BYTES,
        MAX_CONNECTION_BYTES,
        defaults.max_message_bytes as i128,
    );
    let in_flight = f.int_or(
        cx,
        "max_in_flight",
        1,
        MAX_CONNECTION_COUNT,
        defaults.max_in_flight as i128,
    );
    Limits {
        max_message_bytes: usize::try_from(bytes).unwrap_or(defaults.max_message_bytes),
        handshake_timeout: f.positive_duration_or(
            cx,
            "handshake_timeout",
            defaults.handshake_timeout,
        ),
        send_timeout: f.positive_duration_or(cx, "send_timeout", defaults.send_timeout),
        max_in_flight: usize::try_from(in_flight).unwrap_or(defaults.max_in_flight),
    }
}

fn oracles(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> OracleSpec {
    let defaults = OracleSpec::default();
    let Some(f) = Fields::section(cx, node, "[oracles]", ORACLE_KEYS) else {
        return defaults;
    };
    let buffered = f.int_or(
        cx,
        "max_buffered",
        1,
        MAX_CONNECTION_COUNT,
        defaults.max_buffered as i128,
    );
    let buffered_bytes = f.int_or(
        cx,
        "max_buffered_bytes",
        MIN_BUFFERED_BYTES,
        MAX_CONNECTION_BYTES,
        defaults.max_buffered_bytes as i128,
    );
    let type_field = kinds::path_or(cx, &f, "type_field", &defaults.type_field);
    let kinds = f
        .get("kinds")
        .map(|n| kinds::kinds(cx, n))
        .unwrap_or_default();
    let mut session = session::session(cx, &f, &kinds);
    // Before the spec takes `session`: a default `reject.close` gives up the idle codes.
    let idle_close = session::idle_close(cx, &f, &defaults.idle_close, &mut session.reject);
    let framing = kinds::framing(cx, f.get("framing"));
    if let (false, Some(_), Some(n)) = (
        framing.is_plain(),
        f.get("record_separator"),
        f.get("framing"),
    ) {
        cx.report(
            n.span(),
            "oracles.framing: the protocol's packets delimit its records; drop record_separator",
        );
    }
    let mut spec = OracleSpec {
        type_field,
        kinds,
        record_separator: kinds::separator(cx, f.get("record_separator")),
        framing,
        embedded_json: kinds::paths(cx, f.get("embedded_json"), "oracles.embedded_json"),
        batched: f.bool_or(cx, "batched", defaults.batched),
        error_event: f.text_or(cx, "error_event", &defaults.error_event),
        identity: oracle_field(cx, f.get("identity"), "oracles.identity", &["field"]),
        sequence: oracle_field(
            cx,
            f.get("sequence"),
            "oracles.sequence",
            &["field", "contiguous", "per", "kinds"],
        ),
        sequence_gaps: sequence_gaps(cx, f.get("sequence")),
        sequence_per: sequence_per(cx, f.get("sequence")),
        sequence_kinds: sequence_kinds(cx, f.get("sequence")),
        max_buffered: usize::try_from(buffered).unwrap_or(defaults.max_buffered),
        max_buffered_bytes: usize::try_from(buffered_bytes).unwrap_or(defaults.max_buffered_bytes),
        idle_timeout: f.opt_positive_duration(cx, "idle_timeout"),
        idle_close,
        max_lifetime: f.opt_positive_duration(cx, "max_lifetime"),
        session,
        learn: f.bool_or(cx, "learn", defaults.learn),
        ..defaults
    };
    framing_defaults(&mut spec, &f);
    spec
}

/// What a protocol's framing says where `[oracles]` does not: its handshake answer
/// accepts a connection (`accepted`), its refusal refuses one in band (`reject.message`,
/// a kind declared for it when none of that name is), and its own error is the error
/// event: Socket.IO's CONNECT / CONNECT_ERROR (an `"error"` event is any application's
/// to send), STOMP's CONNECTED / ERROR.
fn framing_defaults(spec: &mut OracleSpec, f: &Fields<'_, '_>) {
    let (accepted, refused) = match spec.framing {
        crate::model::Framing::Plain => return,
        crate::model::Framing::SocketIo => ("connect", "connect_error"),
        crate::model::Framing::Stomp => ("CONNECTED", "ERROR"),
    };
    if f.get("error_event").is_none() {
        spec.error_event = refused.into();
    }
    if f.get("accepted").is_none() {
        spec.session.accepted = crate::model::AcceptRule::Message {
            event: accepted.into(),
        };
    }
    if spec.session.reject.message.is_none() {
        if !spec.kinds.iter().any(|k| k.name == refused) {
            spec.kinds.push(crate::model::KindSpec {
                name: refused.into(),
                when: vec![crate::model::FieldTest {
                    path: spec.type_field.clone(),
                    test: crate::model::Test::Equals(refused.into()),
                }],
            });
        }
        spec.session.reject.message = Some(refused.into());
    }
}

/// `{ field = "user_id" }`, or the field alone (`"user_id"`): the oracle is on and checks
/// that field. `allowed`: the keys its table may hold (the sequence's `contiguous` is read
/// by [`sequence_gaps`]).
fn oracle_field(
    cx: &mut Ctx<'_>,
    node: Option<&Node<'_>>,
    section: &str,
    allowed: &[&str],
) -> Option<String> {
    // The field alone, written as a string (`identity = "user_id"`, as `[battery]` takes
    // it): short for `{ field = "user_id" }`.
    if let Some(n) = node.filter(|n| matches!(n.get_ref(), DeValue::String(_))) {
        let field = cx.string(section, n)?.to_string();
        if field.is_empty() {
            cx.report(
                n.span(),
                format!("{section}: expected a field path, found \"\""),
            );
        } else if let Err(why) = crate::model::path::check(&field) {
            cx.report(n.span(), format!("{section}: {why}"));
        }
        return Some(field);
    }
    if let Some(n) = node.filter(|n| !matches!(n.get_ref(), DeValue::Table(_))) {
        cx.report(
            n.span(),
            format!(
                "{section}: expected a field path (\"user_id\") or a table ({{ field = \
                 \"user_id\" }}), found {}",
                walk::found(n.get_ref())
            ),
        );
        return None;
    }
    let f = Fields::section(cx, node, section, allowed)?.with_owner(section);
    let field = f.req_text(cx, "field");
    // An empty field was reported as such already: one problem, said once.
    if let (false, Err(why), Some(n)) = (
        field.is_empty(),
        crate::model::path::check(&field),
        f.get("field"),
    ) {
        cx.report(n.span(), format!("{section}.field: {why}"));
    }
    Some(field)
}

/// `[oracles] sequence = { ..., contiguous = false }`: the field may skip numbers
/// ([`OracleSpec::sequence_gaps`]); `contiguous` defaults to true (exactly one up).
fn sequence_gaps(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> bool {
    let Some(DeValue::Table(table)) = node.map(|n| n.get_ref()) else {
        return false;
    };
    let contiguous = table
        .get("contiguous")
        .and_then(|n| cx.boolean("contiguous", n));
    contiguous == Some(false)
}

/// `[oracles] sequence = { ..., per = "symbol" }`: the field whose value each sequence
/// runs within ([`OracleSpec::sequence_per`]), a field path.
fn sequence_per(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Option<String> {
    let Some(DeValue::Table(table)) = node.map(|n| n.get_ref()) else {
        return None;
    };
    let n = table.get("per")?;
    let per = cx.string("per", n)?.to_string();
    if let Err(why) = crate::model::path::check(&per) {
        cx.report(n.span(), format!("oracles.sequence.per: {why}"));
        return None;
    }
    Some(per)
}

/// `[oracles] sequence = { ..., kinds = ["update"] }`: the kinds that carry the sequence
/// ([`OracleSpec::sequence_kinds`]), each a non-empty string.
fn sequence_kinds(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Vec<String> {
    let Some(DeValue::Table(table)) = node.map(|n| n.get_ref()) else {
        return Vec::new();
    };
    let Some(n) = table.get("kinds") else {
        return Vec::new();
    };
    let Some(items) = cx.array("kinds", n) else {
        return Vec::new();
    };
    let mut kinds = Vec::new();
    for item in items {
        match cx.string("kinds", item) {
            Some("") => cx.report(
                item.span(),
                "oracles.sequence.kinds: a kind is a non-empty string",
            ),
            Some(kind) => kinds.push(kind.to_string()),
            None => {}
        }
    }
    if kinds.is_empty() && !items.is_empty() {
        return Vec::new();
    }
    if items.is_empty() {
        cx.report(
            n.span(),
            "oracles.sequence.kinds: expected at least one kind (leave `kinds` out to judge \
             every record that holds the field)",
        );
    }
    kinds
}

/// [`crate::model::Scenario::content_hash`] of `text`: the SHA-256 of its TOML tables
/// written out again (comments, layout and key order dropped); of the text itself when it
/// does not parse (a scenario that loads always does).
pub(crate) fn content_hash(text: &str) -> String {
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => sha256_hex(&serde_json::to_string(&table).unwrap_or_default()),
        Err(_) => sha256_hex(text),
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
