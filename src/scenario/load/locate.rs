//! Where a loaded scenario's group or step is written, for messages about a valid file
//! (`validate`'s warnings and notes): the scenario itself keeps no positions once loaded.

use super::walk::{Ctx, Node};
use toml::de::{DeTable, DeValue};

/// The 1-based line and column at which group `group` (0-based, in file order) of the
/// scenario in `text` is written, or its step `path` when `path` is not empty (1-based
/// indices, one per nested `repeat`: `[2, 1]` is the first step inside the repeat at step
/// 2, as the verdict's notes number steps). `None` when `text` holds no such group or step
/// (not the text the scenario was loaded from, or not TOML). Parses `text`: for more than
/// one place in the same text, [`Locator`] parses it once.
pub fn position(text: &str, group: usize, path: &[usize]) -> Option<(usize, usize)> {
    Locator::new(text).position(group, path)
}

/// Where the groups and steps of one scenario text are written ([`position`]), the text
/// parsed and its lines indexed once: `validate` places a warning for each of thousands
/// of groups, and parsing the whole text again for each made it quadratic in the file's
/// size (8,000 groups: 43 s).
pub struct Locator<'t> {
    /// `None` when the text is not TOML: nothing is found in it.
    doc: Option<toml::Spanned<DeTable<'t>>>,
    lines: Ctx<'t>,
}

impl<'t> Locator<'t> {
    /// Parses `text` (once; O(its length)).
    pub fn new(text: &'t str) -> Locator<'t> {
        Locator {
            doc: DeTable::parse(text).ok(),
            lines: Ctx::new("", text),
        }
    }

    /// [`position`] in this text: O(the depth of `path`, plus a binary search of the
    /// lines).
    pub fn position(&self, group: usize, path: &[usize]) -> Option<(usize, usize)> {
        let groups = self.doc.as_ref()?.get_ref().get("group")?;
        let mut node: &Node<'_> = items(groups)?.get(group)?;
        for &index in path {
            let steps = table_get(node, "steps")?;
            node = items(steps)?.get(index.checked_sub(1)?)?;
        }
        Some(self.lines.position(node.span().start))
    }
}

fn items<'n, 'i>(node: &'n Node<'i>) -> Option<&'n [Node<'i>]> {
    match node.get_ref() {
        DeValue::Array(items) => Some(items),
        _ => None,
    }
}

fn table_get<'n, 'i>(node: &'n Node<'i>, key: &str) -> Option<&'n Node<'i>> {
    match node.get_ref() {
        DeValue::Table(table) => table.get(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_nested_steps_are_found_where_they_are_written() {
        let text = r#"name = "x"

[[group]]
name = "a"
steps = [{ think = "1s" }]

[[group]]
name = "b"
steps = [
  { send = { type = "hi" } },
  { repeat = 2, steps = [
      { think = "1s" },
      { send = { type = "again" } },
  ] },
]
"#;
        assert_eq!(position(text, 0, &[1]), Some((5, 10)));
        assert_eq!(position(text, 1, &[1]), Some((10, 3)));
        assert_eq!(position(text, 1, &[2, 2]), Some((13, 7)));
        assert!(position(text, 1, &[]).is_some_and(|(line, _)| (7..=9).contains(&line)));
        assert_eq!(position(text, 2, &[1]), None, "no third group");
        assert_eq!(position(text, 1, &[3]), None, "no third step");
        assert_eq!(position(text, 1, &[0]), None, "steps count from 1");
        assert_eq!(position("not = [toml", 0, &[1]), None);
    }
}
