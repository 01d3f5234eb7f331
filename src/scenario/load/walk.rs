//! Reading a spanned TOML tree by hand.
//!
//! Every getter records a [`Problem`] (with line:column from the node's byte span) and
//! hands back a default instead of failing, so one pass over the file finds every problem.
//! The half-built scenario that results is thrown away whenever a problem was recorded.

use super::dist::{parse_dist, parse_duration};
use super::Problem;
use crate::model::words::did_you_mean;
use crate::model::Dist;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeInteger, DeTable, DeValue};
use toml::Spanned;

/// A value in the parsed document, with its byte span.
pub(super) type Node<'i> = Spanned<DeValue<'i>>;

/// The file being loaded and the problems found so far.
pub(super) struct Ctx<'s> {
    file: &'s str,
    text: &'s str,
    /// Byte offset of each line's start: a problem's line is a binary search, not a scan
    /// from the top of the file (which made validating a file with many problems quadratic).
    lines: Vec<usize>,
    problems: Vec<Problem>,
    /// Problems of the environment, not the file ([`Ctx::defer`]).
    deferred: Vec<Problem>,
    /// Values taken from the environment and what to show instead (`${NAME}`): they may be
    /// secrets, and no message prints them.
    redactions: crate::model::EnvValues,
    /// Strings that named environment variables, by the byte offset of their value in the
    /// file, as written (`Bearer ${API_KEY}`): what a plan keeps of them.
    env_written: std::collections::HashMap<usize, String>,
    /// Strings whose `${NAME}` could not be expanded (an unset variable, reported there):
    /// what else is wrong with such a value follows from it (`invalid port "${PORT}"`),
    /// so no other problem is reported inside them.
    unexpanded: Vec<Range<usize>>,
    /// The scenario file's folder: relative paths in the file resolve against it.
    base: Option<PathBuf>,
    /// The feeder columns `{{feed.COLUMN}}` may name here: the group's while one is read
    /// (empty: it has no feeder); `None` outside groups (`[auth]`), where any column is
    /// taken and a connection whose group lacks it sends the placeholder as written.
    pub feed_columns: Option<Vec<String>>,
    /// Where `${NAME}` references read the environment (`None`: a file checked with no
    /// environment, as a battery's is): what a target URL is checked as dialled with.
    lookup: Option<super::env::Lookup<'s>>,
}

/// What a file named in `[auth]` must hold for the run to use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InputFile {
    /// Key material (`what`: `the JWT secret`, `a PEM key`): any bytes but newlines.
    Secret(&'static str),
    /// `auth.key` or `auth.public_key`: the PEM key the algorithm signs or verifies with.
    Key(PemKey),
    /// `auth.tokens`: at least one token, one per line (UTF-8).
    Tokens,
}

/// A PEM key a key source must hold: the private key an algorithm signs with (`auth.key`)
/// or the public key it verifies with (`auth.public_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PemKey {
    Private(crate::model::JwtAlg),
    Public(crate::model::JwtAlg),
}

impl PemKey {
    /// Why `pem` (held in `held_in`) is not this key, in words; `None` when it is (or the
    /// algorithm is HMAC's, whose secrets are any bytes).
    pub(super) fn problem(self, pem: &[u8], held_in: &str) -> Option<String> {
        match self {
            PemKey::Private(alg) => crate::auth::private_key_problem(alg, pem, held_in),
            PemKey::Public(alg) => crate::auth::public_key_problem(alg, pem, held_in),
        }
    }

    fn words(self) -> String {
        match self {
            PemKey::Private(alg) => format!("{}'s PEM key", alg.name()),
            PemKey::Public(alg) => format!("{}'s PEM public key", alg.name()),
        }
    }
}

impl InputFile {
    fn expected(self) -> String {
        match self {
            InputFile::Secret(what) => format!("a file holding {what}"),
            InputFile::Key(key) => format!("a file holding {}", key.words()),
            InputFile::Tokens => "a file with at least one token, one per line".to_string(),
        }
    }

    /// Reads `path` as the run will and says what is wrong with it, never what it holds.
    fn check(self, path: &str) -> Result<(), String> {
        let cannot = |e: std::io::Error| format!("cannot read {path:?}: {e}");
        let empty = match self {
            InputFile::Secret(_) => {
                crate::auth::secret_is_empty(&std::fs::read(path).map_err(cannot)?)
            }
            InputFile::Key(key) => {
                let bytes = std::fs::read(path).map_err(cannot)?;
                let empty = crate::auth::secret_is_empty(&bytes);
                if let Some(problem) = key.problem(&bytes, path).filter(|_| !empty) {
                    return Err(problem);
                }
                empty
            }
            InputFile::Tokens => {
                let bytes = std::fs::read(path).map_err(cannot)?;
                let text = crate::model::utf8_text(bytes)
                    .map_err(|at| format!("{path}:{at}; a token file must be UTF-8"))?;
                let none = crate::auth::token_lines(&text).next().is_none();
                no_repeated_lines(&text, path)?;
                none
            }
        };
        if empty {
            let blank = match self {
                InputFile::Secret(_) | InputFile::Key(_) => "an empty file (or only newlines)",
                InputFile::Tokens => "an empty file (or only blank lines)",
            };
            return Err(format!(
                "expected {}, found {blank}: {path:?}",
                self.expected()
            ));
        }
        Ok(())
    }
}

/// Fails when a token file holds one token twice ([`crate::auth::repeats`]): names the
/// first pair by line (as the run labels them, `file#N`) and counts the others; never
/// shows a token.
fn no_repeated_lines(text: &str, path: &str) -> Result<(), String> {
    let lines = crate::auth::token_lines(text).map(|(i, line)| (i + 1, line));
    let repeats = crate::auth::repeats(lines);
    let Some(first) = repeats.first() else {
        return Ok(());
    };
    let more = match repeats.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more repeated line)".to_string(),
        n => format!(" (and {n} more repeated lines)"),
    };
    Err(format!(
        "in {path:?}, {}{more}; {}",
        first.describe("lines"),
        crate::auth::REPEAT_ADVICE
    ))
}

impl<'s> Ctx<'s> {
    /// How many problems of the file were reported so far: whether a check found one.
    pub(super) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub fn new(file: &'s str, text: &'s str) -> Self {
        let lines = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ctx {
            file,
            text,
            lines,
            problems: Vec::new(),
            deferred: Vec::new(),
            redactions: Default::default(),
            env_written: std::collections::HashMap::new(),
            unexpanded: Vec::new(),
            base: None,
            feed_columns: None,
            lookup: None,
        }
    }

    /// `${NAME}` references read the environment through `lookup`.
    pub fn with_lookup(mut self, lookup: super::env::Lookup<'s>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// The URL the dialer would dial for `written` ([`crate::model::url::dial_url`]: a
    /// reference in the userinfo percent-encoded), or `expanded` (the value as the loader
    /// expanded it) when there is no environment to read or a reference has no value.
    pub fn dial_url(&self, written: &str, expanded: &str) -> String {
        self.lookup
            .and_then(|lookup| crate::model::url::dial_url(written, lookup).ok())
            .unwrap_or_else(|| expanded.to_string())
    }

    /// Relative paths in the file resolve against `base` (the file's folder).
    pub fn with_base(mut self, base: Option<PathBuf>) -> Self {
        self.base = base;
        self
    }

    /// `path` as written when absolute (or when the file's folder is unknown: a scenario
    /// given as text), else joined to the file's folder.
    pub fn resolve(&self, path: &str) -> String {
        match &self.base {
            Some(base) if Path::new(path).is_relative() => base.join(path).display().to_string(),
            _ => path.to_string(),
        }
    }

    /// Reports `key`'s file (already [resolved](Self::resolve)) at `span` when the run
    /// could not use it: it cannot be read, is a directory, or holds nothing the run would
    /// take (`input` says what it must hold, by the rule the run reads it with). Only for
    /// a scenario loaded from a file: a scenario given as text has no folder its relative
    /// paths mean anything in. The contents are secrets or tokens: they are read to be
    /// checked, then dropped, and no message shows them.
    pub fn check_input_file(
        &mut self,
        span: Range<usize>,
        (key, path): (&str, &str),
        input: InputFile,
    ) {
        if self.base.is_none() {
            return;
        }
        let problem = match std::fs::metadata(path) {
            Err(e) => Some(format!("cannot read {path:?}: {e}")),
            Ok(m) if m.is_dir() => Some(format!(
                "expected {}, found a directory: {path:?}",
                input.expected()
            )),
            Ok(_) => input.check(path).err(),
        };
        if let Some(problem) = problem {
            self.report(span, format!("{key}: {problem}"));
        }
    }

    /// Records a problem of the environment the scenario is loaded in rather than of the
    /// file (a secret's variable unset): located like [`Ctx::report`]'s, kept apart so
    /// each command decides whether it stops there (a run) or is a warning (`validate`).
    pub fn defer(&mut self, span: Range<usize>, message: impl Into<String>) {
        let kept = self.problems.len();
        self.report(span, message);
        let moved: Vec<Problem> = self.problems.drain(kept..).collect();
        self.deferred.extend(moved);
    }

    /// The problems recorded with [`Ctx::defer`], in file order.
    pub fn take_deferred(&mut self) -> Vec<Problem> {
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.sort_by_key(|p| (p.line, p.column));
        deferred
    }

    /// From now on, messages show `shown` wherever `value` would appear.
    pub fn redact(&mut self, value: &str, shown: &str) {
        self.redactions.add(value, shown);
    }

    /// Records that the string at `span` named environment variables and was `written`.
    /// A string value whose `${NAME}` could not be expanded, its problem reported: no
    /// other problem is reported inside it ([`Ctx::report`]).
    pub fn unexpanded(&mut self, span: Range<usize>) {
        self.unexpanded.push(span);
    }

    pub fn named_env(&mut self, span: Range<usize>, written: &str) {
        self.env_written.insert(span.start, written.to_string());
    }

    /// The string `node` holds (`value`, already expanded) as a text a plan may keep: as
    /// written when it named environment variables, so no plan file holds their values.
    pub fn env_text(&self, node: &Node<'_>, value: &str) -> crate::model::EnvText {
        match self.env_written.get(&node.span().start) {
            Some(written) => crate::model::EnvText::Env {
                written: written.clone(),
                value: Some(value.to_string()),
            },
            None => crate::model::EnvText::Plain(value.to_string()),
        }
    }

    /// 1-based line and column (in characters, as editors count) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before `offset`; `lines[0]` is 0, so there is one.
        let line = self.lines.partition_point(|&start| start <= offset).max(1);
        let start = self.lines.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .unwrap_or_default()
            .chars()
            .count()
            + 1;
        (line, column)
    }

    pub fn text(&self) -> &'s str {
        self.text
    }

    pub fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        if self.unexpanded.iter().any(|u| u.contains(&span.start)) {
            return;
        }
        let (line, column) = self.position(span.start);
        let message = self.redactions.hide(&message.into());
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }

    /// Problems in the order they were reported.
    pub fn into_reported(self) -> Vec<Problem> {
        self.problems
    }

    /// Problems in file order, so the first one printed is the first one in the file.
    pub fn into_problems(self) -> Vec<Problem> {
        let mut problems = self.problems;
        problems.sort_by_key(|p| (p.line, p.column));
        problems
    }

    fn mismatch(&mut self, key: &str, expected: &str, node: &Node<'_>) {
        let found = kind(node.get_ref());
        self.report(
            node.span(),
            format!("{key}: expected {expected}, found {found}"),
        );
    }

    pub fn string<'n>(&mut self, key: &str, node: &'n Node<'_>) -> Option<&'n str> {
        match node.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.mismatch(key, "a string", node);
                None
            }
        }
    }

    pub fn integer(&mut self, key: &str, node: &Node<'_>) -> Option<i128> {
        match node.get_ref() {
            DeValue::Integer(i) => int_value(i),
            _ => {
                self.mismatch(key, "an integer", node);
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &str, node: &Node<'_>) -> Option<bool> {
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.mismatch(key, "a boolean (true or false)", node);
                None
            }
        }
    }

    pub fn array<'n, 'i>(&mut self, key: &str, node: &'n Node<'i>) -> Option<&'n [Node<'i>]> {
        match node.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.mismatch(key, "an array", node);
                None
            }
        }
    }

    pub fn table<'n, 'i>(&mut self, key: &str, node: &'n Node<'i>) -> Option<&'n DeTable<'i>> {
        match node.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.mismatch(key, "a table", node);
                None
            }
        }
    }

    pub fn duration(&mut self, key: &str, node: &Node<'_>) -> Option<Duration> {
        let DeValue::String(text) = node.get_ref() else {
            // Not "expected a string": `within = 5` needs its unit as much as its quotes.
            let message = format!(
                "{key}: expected a duration like \"250ms\", \"2s\", \"1m\" (a string with its \
                 unit), found {}",
                found_unquoted(node.get_ref())
            );
            self.report(node.span(), message);
            return None;
        };
        parse_duration(text)
            .map_err(|e| self.report(node.span(), format!("{key}: {e}")))
            .ok()
    }

    pub fn dist(&mut self, key: &str, node: &Node<'_>) -> Option<Dist> {
        let text = self.string(key, node)?;
        parse_dist(text)
            .map_err(|e| self.report(node.span(), format!("{key}: {e}")))
            .ok()
    }

    /// Checks that exactly one of `kinds` is a key of `table`, and returns it.
    pub fn one_of<'k>(
        &mut self,
        section: &str,
        table: &DeTable<'_>,
        span: Range<usize>,
        kinds: &[&'k str],
    ) -> Option<&'k str> {
        let present: Vec<&'k str> = kinds
            .iter()
            .copied()
            .filter(|k| table.contains_key(*k))
            .collect();
        let expected = kinds.join(", ");
        match present.as_slice() {
            [one] => return Some(one),
            [] => {
                let found: Vec<&str> = table.keys().map(|k| k.get_ref().as_ref()).collect();
                // A misspelt kind (`rmap`) gets the nearest one, as unknown keys do.
                let hint = found
                    .iter()
                    .map(|given| did_you_mean(given, kinds.iter().copied()))
                    .find(|hint| !hint.is_empty())
                    .unwrap_or_default();
                let found = if found.is_empty() { "nothing".into() } else { found.join(", ") };
                self.report(
                    span,
                    format!("{section} needs one of: {expected}; found: {found}{hint}"),
                );
            }
            [first, second, ..] => self.report(
                span,
                format!("{section} has both {first:?} and {second:?}; expected exactly one of: {expected}"),
            ),
        }
        None
    }
}

/// "a string", "an integer", ...: the kind of a value, for messages.
pub(super) fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A string value quoted, anything else by its kind: what a message says was found.
pub(super) fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("{s:?}"),
        other => kind(other).to_string(),
    }
}

/// What a message says was found where a string with a unit was wanted: a number with its
/// value (`the integer 5`), which the writer meant with some unit; else as [`found`].
pub(super) fn found_unquoted(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Integer(i) => match int_value(i) {
            Some(n) => format!("the integer {n}"),
            None => "an integer".to_string(),
        },
        DeValue::Float(f) => format!("the float {}", f.as_str()),
        other => found(other),
    }
}

pub(super) fn int_value(i: &DeInteger<'_>) -> Option<i128> {
    // The parser only produces radix 2, 8, 10 and 16; the guard keeps from_str_radix from
    // panicking should that ever change.
    if !(2..=36).contains(&i.radix()) {
        return None;
    }
    i128::from_str_radix(i.as_str(), i.radix()).ok()
}

/// One table of the document, checked for unknown keys when it is opened.
pub(super) struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    span: Range<usize>,
    section: String,
    owner: String,
    /// The known keys the table's unknown ones were told to be misspellings of ("did you
    /// mean"): a required one among them is not reported missing too.
    pointed_to: Vec<String>,
}

impl<'t, 'i> Fields<'t, 'i> {
    /// `section` names the table in messages about its keys (`[[group]]`); `known` lists the
    /// keys it may have.
    pub fn new(
        cx: &mut Ctx<'_>,
        table: &'t DeTable<'i>,
        span: Range<usize>,
        section: impl Into<String>,
        known: &[&str],
    ) -> Self {
        let section = section.into();
        let mut pointed_to = Vec::new();
        for key in table.keys() {
            let given: &str = key.get_ref().as_ref();
            if !known.contains(&given) {
                let expected = known.join(", ");
                let closest = crate::model::words::closest(given, known.iter().copied());
                let hint = did_you_mean(given, known.iter().copied());
                let message = format!(
                    "unknown field {given:?} in {section}; expected one of: {expected}{hint}"
                );
                cx.report(key.span(), message);
                pointed_to.extend(closest.map(str::to_string));
            }
        }
        Fields {
            table,
            span,
            owner: section.clone(),
            section,
            pointed_to,
        }
    }

    /// Opens an optional sub-table such as `[limits]`; `None` when absent or not a table.
    pub fn section(
        cx: &mut Ctx<'_>,
        node: Option<&'t Node<'i>>,
        section: &str,
        known: &[&str],
    ) -> Option<Self> {
        let node = node?;
        let table = cx.table(section, node)?;
        Some(Fields::new(cx, table, node.span(), section, known))
    }

    /// Names the table in messages about its values (`group "x" has users = 0`).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// How messages about this table's values name it ([`Fields::with_owner`]).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn get(&self, key: &str) -> Option<&'t Node<'i>> {
        self.table.get(key)
    }

    pub fn require(&self, cx: &mut Ctx<'_>, key: &str) -> Option<&'t Node<'i>> {
        let node = self.get(key);
        // A misspelling of it was told as unknown, with "did you mean" this key: one
        // problem, at the misspelling, not a second at the table's start.
        if node.is_none() && !self.pointed_to.iter().any(|k| k == key) {
            cx.report(
                self.span(),
                format!("missing required field {key:?} in {}", self.section),
            );
        }
        node
    }

    pub fn opt_str(&self, cx: &mut Ctx<'_>, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|n| cx.string(key, n))
            .map(str::to_string)
    }

    /// A string that must not be empty; `default` when absent.
    pub fn text_or(&self, cx: &mut Ctx<'_>, key: &str, default: &str) -> String {
        match self.get(key) {
            Some(node) => self.nonempty(cx, key, node),
            None => default.to_string(),
        }
    }

    /// A required string that must not be empty.
    pub fn req_text(&self, cx: &mut Ctx<'_>, key: &str) -> String {
        self.require(cx, key)
            .map(|node| self.nonempty(cx, key, node))
            .unwrap_or_default()
    }

    fn nonempty(&self, cx: &mut Ctx<'_>, key: &str, node: &Node<'_>) -> String {
        let text = cx.string(key, node).unwrap_or("-");
        if text.is_empty() {
            let owner = &self.owner;
            cx.report(
                node.span(),
                format!("{owner} has {key} = \"\"; expected a non-empty string"),
            );
        }
        text.to_string()
    }

    pub fn bool_or(&self, cx: &mut Ctx<'_>, key: &str, default: bool) -> bool {
        self.get(key)
            .and_then(|n| cx.boolean(key, n))
            .unwrap_or(default)
    }

    /// An integer in `min..=max`.
    pub fn int(
        &self,
        cx: &mut Ctx<'_>,
        key: &str,
        node: &Node<'_>,
        min: i128,
        max: i128,
    ) -> Option<i128> {
        let value = cx.integer(key, node)?;
        let owner = &self.owner;
        let complaint = if value < min {
            format!("expected at least {min}")
        } else if value > max {
            format!("expected at most {max}")
        } else {
            return Some(value);
        };
        cx.report(
            node.span(),
            format!("{owner} has {key} = {value}; {complaint}"),
        );
        None
    }

    pub fn int_or(&self, cx: &mut Ctx<'_>, key: &str, min: i128, max: i128, default: i128) -> i128 {
        self.get(key)
            .and_then(|n| self.int(cx, key, n, min, max))
            .unwrap_or(default)
    }

    pub fn duration_or(&self, cx: &mut Ctx<'_>, key: &str, default: Duration) -> Duration {
        self.get(key)
            .and_then(|n| cx.duration(key, n))
            .unwrap_or(default)
    }

    /// A duration that must be more than zero; `default` when absent.
    pub fn positive_duration_or(&self, cx: &mut Ctx<'_>, key: &str, default: Duration) -> Duration {
        match self.get(key) {
            Some(node) => self.positive(cx, key, node),
            None => default,
        }
    }

    /// An optional duration that must be more than zero; `None` when absent (or unreadable:
    /// the problem is reported).
    pub fn opt_positive_duration(&self, cx: &mut Ctx<'_>, key: &str) -> Option<Duration> {
        self.get(key)
            .map(|node| self.positive(cx, key, node))
            .filter(|d| !d.is_zero() && *d != Duration::MAX)
    }

    /// A required duration that must be more than zero.
    pub fn req_positive_duration(&self, cx: &mut Ctx<'_>, key: &str) -> Duration {
        self.require(cx, key)
            .map_or(Duration::ZERO, |node| self.positive(cx, key, node))
    }

    fn positive(&self, cx: &mut Ctx<'_>, key: &str, node: &Node<'_>) -> Duration {
        let value = cx.duration(key, node).unwrap_or(Duration::MAX);
        if value.is_zero() {
            let shown = found(node.get_ref());
            let owner = &self.owner;
            cx.report(
                node.span(),
                format!("{owner} has {key} = {shown}; expected more than zero"),
            );
        }
        value
    }

    pub fn dist_or(&self, cx: &mut Ctx<'_>, key: &str, default: Dist) -> Dist {
        self.get(key)
            .and_then(|n| cx.dist(key, n))
            .unwrap_or(default)
    }

    /// A string that must be one of `options`, mapped to its value; `default` when absent.
    pub fn choice<T: Copy>(
        &self,
        cx: &mut Ctx<'_>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(node) = self.get(key) else {
            return default;
        };
        let Some(text) = cx.string(key, node) else {
            return default;
        };
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return *value;
        }
        let names: Vec<String> = options
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        let expected = names.join(", ");
        let hint = did_you_mean(text, options.iter().map(|(name, _)| *name));
        cx.report(
            node.span(),
            format!("{key}: expected one of {expected}, found {text:?}{hint}"),
        );
        default
    }
}

/// A table's entries in the order the file writes them (the parsed table iterates in key
/// order): what message templates, kinds and captures keep.
pub(super) fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<std::borrow::Cow<'i, str>>, &'t Node<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}
