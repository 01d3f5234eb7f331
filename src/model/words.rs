//! Words in messages: plurals that agree with their count, and "did you mean" for a
//! name the user mistyped.

/// `count` and `noun`, the noun in the plural unless the count is one: "1 group",
/// "2 groups", "0 connections". Nouns whose plural is not a plain `s` take
/// [`plural_as`].
pub fn plural(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `count` and `one` or `many`: for nouns such as "repro"/"repros" the plain rule covers,
/// use [`plural`]; this one is for the others ("1 match", "2 matches").
pub fn plural_as(count: impl Into<u64>, one: &str, many: &str) -> String {
    let count = count.into();
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// The candidate closest to `given`, when one is close enough to be a typo of it: a
/// Jaro-Winkler similarity of at least 0.8, `given` being a prefix of it (`turn` for
/// `turn_raw`), or one edit away from it (a letter added, dropped or changed, or two
/// side by side swapped: `rnu` for `run`) when both have at least 3 letters. Case is
/// ignored. `None` when nothing is close: a suggestion that is far off misleads more than
/// none.
pub fn closest<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let given_lower = given.to_lowercase();
    let mut best: Option<(f64, &'c str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        if lower == given_lower {
            return Some(candidate);
        }
        let mut score = strsim::jaro_winkler(&given_lower, &lower);
        if given_lower.len() >= 3 && lower.starts_with(&given_lower) {
            score = score.max(0.9);
        }
        // Jaro-Winkler counts a swap in a short name as much of it lost (`rnu` and `run`
        // score 0.6), while one edit is the usual typo whatever the length. Under 3
        // letters, one edit reaches too many names to point at one.
        let one_edit = given_lower.chars().count().min(lower.chars().count()) >= 3
            && strsim::osa_distance(&given_lower, &lower) == 1;
        if (score >= 0.8 || one_edit) && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// "; did you mean \"x\"?" for the closest candidate, or nothing: the tail of an error
/// message about an unknown name.
pub fn did_you_mean<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    closest(given, candidates).map_or_else(String::new, |c| format!("; did you mean {c:?}?"))
}

/// The first 12 characters of a hex digest (a scenario or plan hash): what a user compares
/// by eye. The whole text when shorter.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `c` as a message may show text a server chose, pushed onto `out`: a control character
/// escaped (`\n`, `\u{1b}`: no terminal escapes, no line breaks), and so is a Unicode
/// bidirectional formatting character (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069), which reorders the text around it on a terminal or a page and can make
/// a quoted answer read as something else ("Trojan Source", CVE-2021-42574); anything
/// else as it is.
pub fn push_shown(out: &mut String, c: char) {
    let bidi = matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    );
    if c.is_control() {
        out.extend(c.escape_default());
    } else if bidi {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Control and bidirectional formatting characters are shown escaped, everything else
    /// (quotes, accents, emoji) as it is.
    #[test]
    fn what_a_server_chose_is_shown_without_its_controls_or_direction_overrides() {
        let mut out = String::new();
        for c in "a\"é\n\u{1b}[31m\u{202E}gnp.exe\u{2066}😀".chars() {
            push_shown(&mut out, c);
        }
        assert_eq!(out, "a\"é\\n\\u{1b}[31m\\u{202e}gnp.exe\\u{2066}😀");
    }

    #[test]
    fn plurals_agree_with_their_count() {
        assert_eq!(plural(1u32, "group"), "1 group");
        assert_eq!(plural(0u32, "group"), "0 groups");
        assert_eq!(plural(2u64, "connection"), "2 connections");
        assert_eq!(plural_as(1u32, "match", "matches"), "1 match");
        assert_eq!(plural_as(3u32, "match", "matches"), "3 matches");
    }

    #[test]
    fn a_typo_gets_the_nearest_name_and_nonsense_gets_none() {
        let keys = ["users", "connections_per_user", "steps", "name"];
        assert_eq!(closest("usres", keys), Some("users"));
        assert_eq!(closest("Steps", keys), Some("steps"));
        assert_eq!(closest("connections", keys), Some("connections_per_user"));
        assert_eq!(closest("zzzzzz", keys), None);
        assert_eq!(did_you_mean("nmae", keys), "; did you mean \"name\"?");
        assert_eq!(did_you_mean("qqq", keys), "");
    }

    /// A short name one edit from a candidate (a swap, a letter dropped, added or changed)
    /// gets it, as a long one does; a short word unlike every candidate, or one too short
    /// for one edit to point anywhere, gets none.
    #[test]
    fn a_short_name_one_edit_off_gets_a_suggestion() {
        let placeholders = [
            "user", "conn", "run", "group", "sub", "random", "uuid", "marker",
        ];
        assert_eq!(closest("rnu", placeholders), Some("run"));
        assert_eq!(closest("urn", placeholders), Some("run"));
        assert_eq!(closest("rn", placeholders), None);
        assert_eq!(closest("usr", placeholders), Some("user"));
        assert_eq!(closest("cnon", placeholders), Some("conn"));
        assert_eq!(closest("sbu", placeholders), Some("sub"));
        assert_eq!(closest("uuid4", placeholders), Some("uuid"));
        for unrelated in ["foo", "id", "x", "name", "time", "zebra", "abc"] {
            assert_eq!(closest(unrelated, placeholders), None, "{unrelated}");
        }
    }
}
