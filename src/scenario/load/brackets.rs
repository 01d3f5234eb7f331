//! Where an unclosed bracket was opened. toml notices a missing `}` or `]` only where the
//! text can no longer be read as the open table or array (often lines later, at the
//! closing `]` of the steps), so its error points past the mistake; the fix goes where the
//! bracket opened.

/// The byte offset of the `{` (when `open` is `b'{'`) or `[` (`b'['`) that the text before
/// `end` leaves unclosed: the innermost one still open at `end`, else the latest one a
/// closer of the other kind ran past (`{ a = 1 ]`: the `]` closes the array around it, so
/// the `{` is never closed). Strings, comments and table headers are skipped; `None` when
/// every such bracket is closed.
pub(super) fn unclosed_opener(text: &str, end: usize, open: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut ran_past = None;
    let mut at = 0;
    let mut line_start = true;
    while at < end {
        let byte = bytes[at];
        match byte {
            b'\n' => {
                line_start = true;
                at += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                at += 1;
                continue;
            }
            // A table header (`[group]`, `[[group]]`) is not an array.
            b'[' if line_start && stack.is_empty() => at = line_end(bytes, at),
            b'#' => at = line_end(bytes, at),
            b'"' | b'\'' => at = string_end(bytes, at),
            b'{' | b'[' => {
                stack.push((byte, at));
                at += 1;
            }
            b'}' | b']' => {
                let opener = if byte == b'}' { b'{' } else { b'[' };
                if stack.iter().any(|(kind, _)| *kind == opener) {
                    // Everything opened inside and not closed ends here, unclosed.
                    while let Some((kind, offset)) = stack.pop() {
                        if kind == opener {
                            break;
                        }
                        if kind == open {
                            ran_past = Some(offset);
                        }
                    }
                }
                at += 1;
            }
            _ => at += 1,
        }
        line_start = false;
    }
    let still_open = stack.iter().rev().find(|(kind, _)| *kind == open);
    still_open.map(|(_, offset)| *offset).or(ran_past)
}

/// The offset of the newline ending the line `at` is on (or the text's end).
fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        .map_or(bytes.len(), |n| at + n)
}

/// The offset just past the string whose opening quote is at `at`: basic (`"`, with
/// escapes), literal (`'`) or either's multi-line form (three quotes). A one-line string
/// left open ends at its line's end, as toml reads no further.
fn string_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let triple = bytes.get(at..at + 3) == Some(&[quote; 3][..]);
    let mut i = at + if triple { 3 } else { 1 };
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\\' && quote == b'"' {
            i += 2;
            continue;
        }
        if byte == b'\n' && !triple {
            return i;
        }
        if byte == quote && (!triple || bytes.get(i..i + 3) == Some(&[quote; 3][..])) {
            return i + if triple { 3 } else { 1 };
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (0-based) offset of the `n`-th occurrence of `needle` in `text`.
    fn nth(text: &str, needle: &str, n: usize) -> usize {
        text.match_indices(needle).nth(n).map(|(i, _)| i).unwrap()
    }

    #[test]
    fn a_table_left_open_inside_the_steps_is_found_where_it_opened() {
        let text = "steps = [\n  { send = { a = \"}\" },\n  { expect = \"a\" },\n]\n";
        // The first step's outer `{` is never closed; toml notices at the `]`.
        assert_eq!(
            unclosed_opener(text, text.len(), b'{'),
            Some(nth(text, "{", 0))
        );
        assert_eq!(unclosed_opener(text, text.len(), b'['), None);
    }

    #[test]
    fn an_array_left_open_at_the_end_is_the_innermost_one() {
        let text = "[[group]]\nsteps = [\n  { send = { a = [1, 2] } },\n";
        assert_eq!(
            unclosed_opener(text, text.len(), b'['),
            Some(nth(text, "[", 2))
        );
        assert_eq!(unclosed_opener(text, text.len(), b'{'), None);
    }

    #[test]
    fn brackets_in_strings_comments_and_headers_are_not_counted() {
        let text =
            "# a { comment\n[table]\nx = \"{[\\\"\"\ny = '{'\nz = '''\n{\n'''\nw = \"\"\"[\"\"\"\n";
        assert_eq!(unclosed_opener(text, text.len(), b'{'), None);
        assert_eq!(unclosed_opener(text, text.len(), b'['), None);
    }

    #[test]
    fn any_text_and_end_are_read_without_panicking() {
        for text in ["", "{", "]", "\"", "'''", "\\", "[[", "{ ]", "\"\\"] {
            for end in 0..=text.len() + 2 {
                let _ = unclosed_opener(text, end, b'{');
                let _ = unclosed_opener(text, end, b'[');
            }
        }
    }
}
