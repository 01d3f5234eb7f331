//! Environment variables in scenario values: `${NAME}` (or `${NAME:-default}`) anywhere in
//! a string value is replaced by the variable's value before the file is read for meaning,
//! so every key takes them. `$${` stands for a literal `${`.
//!
//! An unset variable without a default is a problem at the `${` itself. A value that came
//! from the environment may be a secret: [`Ctx::report`] shows `${NAME}` in its place in
//! every message about the file.

use super::walk::{Ctx, Node};
use crate::model::spec::{env_pieces as pieces, EnvPiece as Piece};
use toml::de::{DeString, DeTable, DeValue};

/// Looks a variable up: `std::env::var` in the binary, a map in tests.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands `${...}` in every string value of `doc` (keys are left alone).
pub(super) fn expand(cx: &mut Ctx<'_>, doc: &mut DeTable<'_>, lookup: Lookup<'_>) {
    for (_, value) in doc.iter_mut() {
        expand_node(cx, value, lookup);
    }
}

fn expand_node(cx: &mut Ctx<'_>, node: &mut Node<'_>, lookup: Lookup<'_>) {
    let span = node.span();
    match node.get_mut() {
        DeValue::String(s) if s.contains("${") => {
            let written = s.to_string();
            match expand_str(cx, s, span.clone(), lookup) {
                Some((expanded, named)) => {
                    if named {
                        cx.named_env(span, &written);
                    }
                    *s = DeString::Owned(expanded);
                }
                None => cx.unexpanded(span),
            }
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                expand_node(cx, item, lookup);
            }
        }
        DeValue::Table(table) => expand(cx, table, lookup),
        _ => {}
    }
}

/// The string with its variables replaced, and whether it named any (not only `$${`);
/// `None` (after reporting) when one is unset or malformed. `span` is the string's place in the file, used to point at the `${`.
fn expand_str(
    cx: &mut Ctx<'_>,
    text: &str,
    span: std::ops::Range<usize>,
    lookup: Lookup<'_>,
) -> Option<(String, bool)> {
    let mut named = false;
    let mut out = String::with_capacity(text.len());
    let mut ok = true;
    for piece in pieces(text) {
        let (inner, name, default) = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Unclosed => {
                let message = "unclosed ${ in a string: write ${NAME}, or $${ for a literal ${";
                cx.report(locate(cx, &span, "${"), message);
                return None;
            }
            Piece::Ref {
                inner,
                name,
                default,
            } => (inner, name, default),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let reference = format!("${{{inner}}}");
        if !valid {
            let message = format!(
                "{reference:?} is not an environment variable reference: a name is letters, \
                 digits and _ (write $${{ for a literal ${{)"
            );
            cx.report(locate(cx, &span, &reference), message);
            ok = false;
        } else {
            match lookup(name).or_else(|| default.map(str::to_string)) {
                Some(value) => {
                    named = true;
                    cx.redact(&value, &format!("${{{name}}}"));
                    out.push_str(&value);
                }
                None => {
                    let message = format!(
                        "environment variable {name} is not set (used as ${{{name}}}; \
                         set it, or give a default: ${{{name}:-value}})"
                    );
                    cx.report(locate(cx, &span, &reference), message);
                    ok = false;
                }
            }
        }
    }
    if ok {
        cx.redact(&out, text);
    }
    ok.then_some((out, named))
}

/// The span of `needle` in the file inside `span` (the string as written), or the start
/// of the string when it cannot be found as written (an escape inside it).
fn locate(cx: &Ctx<'_>, span: &std::ops::Range<usize>, needle: &str) -> std::ops::Range<usize> {
    let raw = cx.text().get(span.clone()).unwrap_or_default();
    match raw.find(needle) {
        Some(at) => span.start + at..span.start + at + needle.len(),
        None => span.clone(),
    }
}
