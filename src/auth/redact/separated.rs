//! Finding a token a server echoed with separators inside it, and the piece of one an
//! excerpt's cut left at its edge.
//!
//! A server may pretty-print a token in groups (`eyJhbGci OiJIUzI1 …`), wrap it at 64
//! columns (`\r\n`, or the two characters `\n` once it is escaped into JSON or a quote),
//! or put a `-` every few characters; and an excerpt cut at `…` may keep a token's first
//! characters (or begin with its last ones). Both are found by comparing the text and
//! the tokens with their *dropped* bytes left out ([`separator_at`], the same rule for
//! both): whitespace, `-`, `_`, `+`, backslashes and the letter of an escape (`\n`,
//! `\r`, `\t`, `\u000a`, `\u2028`), a line break or space percent-encoded (`%0D%0A`,
//! `%20`), an HTML line break (`<br>`, `<BR  />`) or reference to a blank (`&nbsp;`,
//! `&#10;`, `&#x0A;`).
//! A token's own `-` and `_` (base64url characters) are dropped from it as from the
//! text, so they neither stop a match nor count as a separator the token lacks; where
//! the text has them around what matched, they are hidden with it ([`widen`]).
//!
//! A token's base64 (either alphabet, padded or not) wrapped as MIME or PEM wrap it is
//! found whole the same way: only the hash of its kept bytes is indexed, so a piece of
//! it (cut short, or at an excerpt's edge) is not found here.

use super::forms::Encoding;
use super::{STRIDE, WINDOW};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

/// Most dropped bytes in a row between two bytes of one token: a line break and an
/// indentation fit, a blank paragraph between two words does not (nor does a long run
/// of whitespace make every window walk far).
const MAX_GAP: usize = 32;

/// Shortest piece of a token hidden at an excerpt's edge (the text's start or end, or
/// either side of a `…`), in the token's characters (its own `-` and `_` count, what the
/// text puts between them does not): shorter than a piece found anywhere ([`WINDOW`]),
/// since a cut at an edge is where a token's start or end shows.
pub(super) const EDGE: usize = 12;

/// Fewest kept bytes in such a piece (a third of its characters may be `-` and `_`, as
/// in `sk_live_`): a hash of that many at the edge names the tokens it may begin or end.
const EDGE_KEPT: usize = 8;

/// What an excerpt ends with where it was cut ([`crate::model::history::excerpt`]).
const CUT: &[u8] = "…".as_bytes();

/// What a span of the text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// The whole of the token form at this index of the redactor's forms.
    Whole(u32),
    /// A piece of one.
    Part,
}

/// Bytes `start..end` of a text, which hold `found`. `start` and `end` fall on bytes of
/// the token (or its own `-` and `_`), never on a separator around it, but maybe inside
/// a UTF-8 character: the caller widens them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    pub found: Found,
}

/// The redactor's token forms with their dropped bytes left out, indexed to be found in
/// a text the same way.
///
/// Memory: each form's kept bytes once (at most its length), ~`len / STRIDE` window
/// entries of 16 bytes, and per form a whole-form hash, two edge hashes and two 4-byte
/// places in the sorted lists.
#[derive(Default)]
pub(super) struct Index {
    /// Each form of the redactor's (same index) without its dropped bytes; empty for a
    /// form that has fewer than [`WINDOW`] kept bytes (it is not looked for here).
    cores: Vec<Vec<u8>>,
    /// The hash of a window of a core, one every [`STRIDE`] bytes and the last, to where
    /// it is: (form, offset). Two windows of one hash keep the first, as the redactor's
    /// own windows do.
    windows: HashMap<u64, (u32, u32)>,
    /// The hashes of every core's first window, and of every base64 form's: where one
    /// occurs, a whole token may.
    starts: HashSet<u64>,
    /// The hash of each whole core to its form.
    whole: HashMap<u64, u32>,
    /// The hash of the kept bytes of each token's base64 (both alphabets, padded or not:
    /// wrapped at 76 columns as MIME does, or at 64 as PEM does) to the token's form and
    /// the encoding. Only the hash is kept: the form is made again from the token to be
    /// compared, as the redactor does with its re-encoded forms.
    encoded: HashMap<u64, (u32, Encoding)>,
    /// The distinct lengths of the cores and of the base64 forms' kept bytes, longest
    /// first.
    lengths: Vec<usize>,
    /// The forms whose core is kept, sorted by core: the ones that begin with some bytes
    /// are together, found by binary search.
    by_prefix: Vec<u32>,
    /// The same, sorted by core read backwards (for the ones that end with some bytes).
    by_suffix: Vec<u32>,
    /// The hashes of every core's first and last [`EDGE_KEPT`] bytes: where neither
    /// occurs at an edge, the sorted lists are not searched.
    edge_starts: HashSet<u64>,
    edge_ends: HashSet<u64>,
    /// While the index is built: the lengths of the base64 forms' kept bytes added so far,
    /// to join the cores' in `lengths`.
    base64_lengths: std::collections::BTreeSet<usize>,
    hasher: foldhash::fast::FixedState,
}

impl Index {
    /// Adds `core`, the kept bytes of one base64 form (`encoding`) of the token that is
    /// form `at` as written (the redactor makes each token's forms once, for both its
    /// indexes). [`Index::finish`] then adds the forms themselves.
    pub(super) fn add_base64(&mut self, at: u32, encoding: Encoding, core: &[u8]) {
        if let Some(first) = core.get(..WINDOW) {
            self.starts.insert(self.hasher.hash_one(first));
            self.base64_lengths.insert(core.len());
            let hash = self.hasher.hash_one(core);
            self.encoded.entry(hash).or_insert((at, encoding));
        }
    }

    /// Indexes `forms` (a redactor's token forms, each as written) after the base64 forms
    /// [`Index::add_base64`] added, and sorts what finds them by prefix and suffix.
    pub(super) fn finish(mut self, forms: &[Vec<u8>]) -> Index {
        let mut lengths = std::mem::take(&mut self.base64_lengths);
        for (at, form) in forms.iter().enumerate() {
            let core = core_of(form);
            let Ok(at) = u32::try_from(at) else {
                break;
            };
            if core.len() < WINDOW {
                self.cores.push(Vec::new());
                continue;
            }
            self.add(at, &core);
            lengths.insert(core.len());
            self.cores.push(core);
        }
        let mut index = self;
        index.lengths = lengths.into_iter().rev().collect();
        let kept = |f: &u32| index.core(*f).is_some();
        let mut by_prefix: Vec<u32> = (0..index.cores.len())
            .filter_map(|f| u32::try_from(f).ok())
            .filter(kept)
            .collect();
        let mut by_suffix = by_prefix.clone();
        by_prefix.sort_by(|a, b| index.core(*a).cmp(&index.core(*b)));
        by_suffix.sort_by(|a, b| {
            let (a, b) = (
                index.core(*a).unwrap_or_default(),
                index.core(*b).unwrap_or_default(),
            );
            backwards(a).cmp(backwards(b))
        });
        index.by_prefix = by_prefix;
        index.by_suffix = by_suffix;
        index
    }

    /// Indexes `core`, the kept bytes of form `at` (at least [`WINDOW`] of them).
    fn add(&mut self, at: u32, core: &[u8]) {
        let last = core.len() - WINDOW;
        for offset in (0..=last).step_by(STRIDE).chain([last]) {
            let (Some(window), Ok(offset32)) =
                (core.get(offset..offset + WINDOW), u32::try_from(offset))
            else {
                continue;
            };
            let hash = self.hasher.hash_one(window);
            self.windows.entry(hash).or_insert((at, offset32));
        }
        if let Some(first) = core.get(..WINDOW) {
            self.starts.insert(self.hasher.hash_one(first));
        }
        let tail = core.get(core.len() - EDGE_KEPT..);
        if let (Some(head), Some(tail)) = (core.get(..EDGE_KEPT), tail) {
            self.edge_starts.insert(self.hasher.hash_one(head));
            self.edge_ends.insert(self.hasher.hash_one(tail));
        }
        self.whole.entry(self.hasher.hash_one(core)).or_insert(at);
    }

    /// The kept bytes of form `f`; `None` when it is not looked for here.
    fn core(&self, f: u32) -> Option<&[u8]> {
        self.cores
            .get(f as usize)
            .map(Vec::as_slice)
            .filter(|c| !c.is_empty())
    }

    /// Every span of `text` that holds a token (its kept bytes, separators or not between
    /// them) or a piece of one: [`WINDOW`] kept bytes from a token's start or end,
    /// `WINDOW + STRIDE - 1` from anywhere, [`EDGE`] characters from its start or end at
    /// an edge of the text or of a cut. In order, not overlapping; `forms` are the
    /// redactor's forms as written (for the `-` and `_` around a match).
    ///
    /// Cost: linear in the text. Every byte begins at most one window of [`WINDOW`] kept
    /// bytes (so it is walked by at most `WINDOW` of them, gaps capped at [`MAX_GAP`]);
    /// where a token's first window occurs, the longest token's length more; each edge
    /// looks no further than the longest token or the next cut. Which bytes are dropped
    /// is read once, before ([`Marked`]): one `bool` per byte of the text while it runs.
    pub(super) fn find(&self, forms: &[Vec<u8>], text: &[u8]) -> Vec<Span> {
        if self.lengths.is_empty() || text.len() < EDGE_KEPT {
            return Vec::new();
        }
        let text = Marked::new(text);
        let mut spans = self.at_edges(forms, &text);
        let mut floor = 0;
        let mut i = 0;
        while i < text.bytes.len() {
            if text.is_dropped(i) {
                i += 1;
                continue;
            }
            match self.match_at(forms, &text, i, floor) {
                Some(span) => {
                    i = span.end.max(i + 1);
                    floor = span.end;
                    spans.push(span);
                }
                None => i += 1,
            }
        }
        merged(spans)
    }

    /// The token or piece of one whose window of kept bytes begins at byte `i` (kept),
    /// grown back (not before `floor`) and forward as far as the text runs along it.
    fn match_at(&self, forms: &[Vec<u8>], text: &Marked, i: usize, floor: usize) -> Option<Span> {
        let mut walk = Kept::new(text, i, text.bytes.len());
        let mut window = [0u8; WINDOW];
        let mut end = i;
        for slot in &mut window {
            let (at, b) = walk.next()?;
            *slot = b;
            end = at + 1;
        }
        let hash = self.hasher.hash_one(window);
        if self.starts.contains(&hash) {
            if let Some(span) = self.whole_at(forms, text, i, floor) {
                return Some(span);
            }
        }
        let &(f, offset) = self.windows.get(&hash)?;
        let core = self.core(f)?;
        let offset = offset as usize;
        if core.get(offset..offset + WINDOW) != Some(&window[..]) {
            return None;
        }
        let mut to = offset + WINDOW;
        for (at, b) in walk {
            if core.get(to) != Some(&b) {
                break;
            }
            to += 1;
            end = at + 1;
        }
        let mut from = offset;
        let mut start = i;
        for (at, b) in KeptBack::new(text, i, floor) {
            if from == 0 || core.get(from - 1) != Some(&b) {
                break;
            }
            from -= 1;
            start = at;
        }
        let found = whole_if(f, from == 0 && to == core.len());
        let form = forms.get(f as usize)?;
        let (start, end) = widen(form, (from, to), text.bytes, (start, end), floor);
        Some(Span { start, end, found })
    }

    /// The longest whole token whose kept bytes begin at byte `i` of `text` (its own `-`
    /// and `_` before them taken too, not before `floor`).
    fn whole_at(&self, forms: &[Vec<u8>], text: &Marked, i: usize, floor: usize) -> Option<Span> {
        let longest = *self.lengths.first()?;
        let (places, kept): (Vec<usize>, Vec<u8>) =
            Kept::new(text, i, text.bytes.len()).take(longest).unzip();
        self.lengths.iter().find_map(|&len| {
            let candidate = kept.get(..len)?;
            let hash = self.hasher.hash_one(candidate);
            let end = places.get(len - 1)? + 1;
            // The hash only names a candidate: the bytes decide.
            if let Some(&f) = self.whole.get(&hash) {
                if let (Some(form), true) = (forms.get(f as usize), self.core(f) == Some(candidate))
                {
                    let (start, end) = widen(form, (0, len), text.bytes, (i, end), floor);
                    return Some(Span {
                        start,
                        end,
                        found: Found::Whole(f),
                    });
                }
            }
            let &(f, encoding) = self.encoded.get(&hash)?;
            let token = std::str::from_utf8(forms.get(f as usize)?).ok()?;
            let form = encoding.apply(token)?;
            if core_of(form.as_bytes()) != candidate {
                return None;
            }
            let (start, end) = widen(form.as_bytes(), (0, len), text.bytes, (i, end), floor);
            Some(Span {
                start,
                end,
                found: Found::Whole(f),
            })
        })
    }

    /// The pieces of tokens at the edges of `text`: a token's start that ends where the
    /// text ends or a cut (`…`) begins, a token's end that begins where the text begins
    /// or a cut ends.
    fn at_edges(&self, forms: &[Vec<u8>], text: &Marked) -> Vec<Span> {
        let cuts: Vec<usize> = memchr::memmem::find_iter(text.bytes, CUT).collect();
        // Each piece is looked for within its stretch: between two cuts, or a cut and an
        // end of the text.
        let mut stretches = Vec::with_capacity(cuts.len() + 1);
        let mut from = 0;
        for &cut in &cuts {
            stretches.push((from, cut));
            from = cut + CUT.len();
        }
        stretches.push((from, text.bytes.len()));
        let mut spans = Vec::new();
        for (from, to) in stretches {
            spans.extend(self.end_of_token_after(forms, text, from, to));
            spans.extend(self.start_of_token_before(forms, text, from, to));
        }
        spans
    }

    /// The longest start of a token, at least [`EDGE`] of its characters, whose last
    /// kept byte is the last kept byte of `text[from..to]`.
    fn start_of_token_before(
        &self,
        forms: &[Vec<u8>],
        text: &Marked,
        from: usize,
        to: usize,
    ) -> Option<Span> {
        let longest = *self.lengths.first()?;
        let (mut places, mut kept): (Vec<usize>, Vec<u8>) =
            KeptBack::new(text, to, from).take(longest).unzip();
        places.reverse();
        kept.reverse();
        let n = kept.len();
        for len in (EDGE_KEPT..=n).rev() {
            let Some(candidate) = kept.get(n - len..) else {
                continue;
            };
            let Some(f) = self.beginning_with(candidate) else {
                continue;
            };
            let (form, core) = (forms.get(f as usize)?, self.core(f)?);
            // Shorter candidates are shorter in the token too: the longest decides.
            if place_of_kept(&Marked::new(form), len - 1) + 1 < EDGE {
                return None;
            }
            let (start, end) = (*places.get(n - len)?, places.get(n - 1)? + 1);
            let (start, end) = widen(form, (0, len), text.bytes, (start, end), from);
            return Some(Span {
                start,
                end,
                found: whole_if(f, len == core.len()),
            });
        }
        None
    }

    /// The longest end of a token, at least [`EDGE`] of its characters, whose first kept
    /// byte is the first kept byte of `text[from..to]`.
    fn end_of_token_after(
        &self,
        forms: &[Vec<u8>],
        text: &Marked,
        from: usize,
        to: usize,
    ) -> Option<Span> {
        let longest = *self.lengths.first()?;
        let (places, kept): (Vec<usize>, Vec<u8>) = Kept::new(text, from, to).take(longest).unzip();
        for len in (EDGE_KEPT..=kept.len()).rev() {
            let Some(candidate) = kept.get(..len) else {
                continue;
            };
            let Some(f) = self.ending_with(candidate) else {
                continue;
            };
            let (form, core) = (forms.get(f as usize)?, self.core(f)?);
            let first = core.len() - len;
            if form.len() - place_of_kept(&Marked::new(form), first) < EDGE {
                return None;
            }
            let (start, end) = (*places.first()?, places.get(len - 1)? + 1);
            let (start, end) = widen(form, (first, core.len()), text.bytes, (start, end), from);
            return Some(Span {
                start,
                end,
                found: whole_if(f, len == core.len()),
            });
        }
        None
    }

    /// A form whose kept bytes begin with `candidate` (at least [`EDGE_KEPT`] of them).
    fn beginning_with(&self, candidate: &[u8]) -> Option<u32> {
        let head = candidate.get(..EDGE_KEPT)?;
        if !self.edge_starts.contains(&self.hasher.hash_one(head)) {
            return None;
        }
        // The forms beginning with it are together, the first at the insertion point (a
        // form that is the candidate itself, when there is one).
        let at = self
            .by_prefix
            .partition_point(|f| self.core(*f).is_some_and(|c| c < candidate));
        let f = *self.by_prefix.get(at)?;
        self.core(f)?.starts_with(candidate).then_some(f)
    }

    /// A form whose kept bytes end with `candidate` (at least [`EDGE_KEPT`] of them).
    fn ending_with(&self, candidate: &[u8]) -> Option<u32> {
        let tail = candidate.get(candidate.len().checked_sub(EDGE_KEPT)?..)?;
        if !self.edge_ends.contains(&self.hasher.hash_one(tail)) {
            return None;
        }
        let at = self.by_suffix.partition_point(|f| {
            self.core(*f)
                .is_some_and(|c| backwards(c).lt(backwards(candidate)))
        });
        let f = *self.by_suffix.get(at)?;
        self.core(f)?.ends_with(candidate).then_some(f)
    }
}

/// A whole form when `whole`, else a piece of one.
fn whole_if(f: u32, whole: bool) -> Found {
    if whole {
        Found::Whole(f)
    } else {
        Found::Part
    }
}

/// How many bytes from byte `i` of `bytes` on make one separator, left out when a text
/// and a token are compared; 0 where none begins. One byte: whitespace, `-`, `_`, `+` (a
/// space in a query string's form), a backslash. More: a line break or space escaped into
/// JSON or a quote (`\n`, `\r`, `\t`, or as its code: `\u000a`, `\u000d`, `\u0020`,
/// `\u0009`, `\u000c`, and the line and paragraph separators `\u2028`, `\u2029` that
/// JSON encoders escape for JavaScript), those two raw, percent-encoded as a URL carries
/// it (`%0A`, `%0D`, `%20`, `%09`, `%0C`), hex in either case; an HTML line break
/// (`<br>`, `<br/>`, `<br />`, any case, any whitespace before the `/`); an HTML
/// character reference to a blank (`&nbsp;`, `&#10;`, `&#x0A;`: [`html_blank`]).
///
/// Separators are read from the start of the text (or token) on ([`Marked`]), the
/// longest at each place, so a text and a token that hold the same bytes drop the same
/// ones whichever way they are walked.
fn separator_at(bytes: &[u8], i: usize) -> usize {
    let Some(rest) = bytes.get(i..) else {
        return 0;
    };
    match rest {
        [b' ' | b'\t' | b'\r' | b'\n' | 0x0c | b'-' | b'_' | b'+', ..] => 1,
        [b'\\', b'n' | b'r' | b't', ..] => 2,
        [b'\\', b'u', b'0', b'0', hi, lo, ..] if is_blank_code(*hi, *lo) => 6,
        [b'\\', b'u', b'2', b'0', b'2', b'8' | b'9', ..] => 6,
        [b'\\', ..] => 1,
        // U+2028 and U+2029 in UTF-8.
        [0xe2, 0x80, 0xa8 | 0xa9, ..] => 3,
        [b'%', hi, lo, ..] if is_blank_code(*hi, *lo) => 3,
        [b'<', b'b' | b'B', b'r' | b'R', ..] => html_break(rest),
        [b'&', ..] => html_blank(rest),
        _ => 0,
    }
}

/// The length of the HTML line break `rest` begins with (`<br`, then whitespace, a `/`,
/// both or neither, then `>`); 0 when it is none (`<bra>`, `<br` left open). Whitespace
/// of any kind and count (`<br  />`, `<br\t/>`, as templates and minifiers leave it), up
/// to [`MAX_GAP`] bytes: a longer run is no tag a server writes, and the bound keeps the
/// look at each `<br` short.
fn html_break(rest: &[u8]) -> usize {
    let mut n = 3;
    while n < 3 + MAX_GAP && rest.get(n).is_some_and(u8::is_ascii_whitespace) {
        n += 1;
    }
    if rest.get(n) == Some(&b'/') {
        n += 1;
    }
    if rest.get(n) == Some(&b'>') {
        n + 1
    } else {
        0
    }
}

/// Most digits read in a numeric character reference: `&#x0000000A;` is still a line
/// feed, and a bound keeps the look at each `&` short.
const MAX_REFERENCE_DIGITS: usize = 8;

/// The length of the HTML character reference to a blank that `rest` begins with; 0 when
/// it is none (`&amp;`, `&#65;`, `&` alone, a reference without its `;`). A server that
/// renders a token into HTML may break or space it with these where a JSON one would
/// write `\n`: `&nbsp;` (name in any case), or a number, decimal (`&#10;`) or hex
/// (`&#x0a;`, `&#XA;`, digits in either case), naming a character [`is_blank_char`]
/// accepts.
fn html_blank(rest: &[u8]) -> usize {
    const NBSP: &[u8] = b"&nbsp;";
    if rest
        .get(..NBSP.len())
        .is_some_and(|r| r.eq_ignore_ascii_case(NBSP))
    {
        return NBSP.len();
    }
    let (radix, start) = match rest {
        [b'&', b'#', b'x' | b'X', ..] => (16, 3),
        [b'&', b'#', ..] => (10, 2),
        _ => return 0,
    };
    let digits = rest
        .iter()
        .skip(start)
        .take(MAX_REFERENCE_DIGITS)
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    let end = start + digits;
    if digits == 0 || rest.get(end) != Some(&b';') {
        return 0;
    }
    // Digits only, at most 8 of them: the value fits in a u32 and parses.
    let value = rest
        .get(start..end)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| u32::from_str_radix(d, radix).ok());
    if value.is_some_and(is_blank_char) {
        end + 1
    } else {
        0
    }
}

/// Whether the character numbered `code` is one a text breaks or spaces a token with: a
/// tab, a line feed, a form feed, a carriage return, a space, a no-break space (what
/// `&nbsp;` names), a line or a paragraph separator (U+2028, U+2029).
fn is_blank_char(code: u32) -> bool {
    matches!(
        code,
        0x09 | 0x0a | 0x0c | 0x0d | 0x20 | 0xa0 | 0x2028 | 0x2029
    )
}

/// Whether the two hex digits `hi` `lo` (either case) name whitespace: a tab, a line
/// feed, a form feed, a carriage return or a space.
fn is_blank_code(hi: u8, lo: u8) -> bool {
    matches!(
        (hi, lo.to_ascii_lowercase()),
        (b'0', b'9' | b'a' | b'c' | b'd') | (b'2', b'0')
    )
}

/// A text (or a token form) with which of its bytes are dropped: every byte of a
/// separator ([`separator_at`]), read once from the start, so that a walk either way and
/// from anywhere sees the same ones. One `bool` per byte, for the time of one search.
struct Marked<'a> {
    bytes: &'a [u8],
    dropped: Vec<bool>,
}

impl<'a> Marked<'a> {
    fn new(bytes: &'a [u8]) -> Marked<'a> {
        let mut dropped = vec![false; bytes.len()];
        let mut i = 0;
        while i < bytes.len() {
            let n = separator_at(bytes, i);
            if n == 0 {
                i += 1;
                continue;
            }
            for d in dropped.iter_mut().skip(i).take(n) {
                *d = true;
            }
            i += n;
        }
        Marked { bytes, dropped }
    }

    /// Whether byte `i` is left out; not for a place past the end.
    fn is_dropped(&self, i: usize) -> bool {
        self.dropped.get(i).copied().unwrap_or(false)
    }

    /// The bytes that are not dropped: what [`core_of`] makes in one pass (the tests
    /// check the two agree).
    #[cfg(test)]
    fn kept(&self) -> Vec<u8> {
        self.bytes
            .iter()
            .zip(&self.dropped)
            .filter(|(_, d)| !**d)
            .map(|(b, _)| *b)
            .collect()
    }
}

/// The bytes of `form` that are not dropped: [`Marked::kept`] in one pass, which asks
/// [`separator_at`] only at a byte that may begin a separator (a token's form is mostly
/// letters and digits, and a run's index makes a dozen such cores per token).
pub(super) fn core_of(form: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(form.len());
    let mut i = 0;
    while let Some(rest) = form.get(i..).filter(|r| !r.is_empty()) {
        // The stretch up to the next byte that may begin a separator is kept whole.
        let run = rest
            .iter()
            .position(|&b| may_begin_separator(b))
            .unwrap_or(rest.len());
        kept.extend_from_slice(&rest[..run]);
        i += run;
        if i < form.len() {
            match separator_at(form, i) {
                0 => {
                    kept.push(form[i]);
                    i += 1;
                }
                dropped => i += dropped,
            }
        }
    }
    kept
}

/// Whether a separator ([`separator_at`]) may begin with byte `b`: its first bytes, all.
fn may_begin_separator(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | 0x0c
            | b'-'
            | b'_'
            | b'+'
            | b'\\'
            | 0xe2
            | b'%'
            | b'<'
            | b'&'
    )
}

/// `bytes` read backwards, for the order of the ends of tokens.
fn backwards(bytes: &[u8]) -> impl Iterator<Item = &u8> {
    bytes.iter().rev()
}

/// Where the kept byte numbered `n` (from 0) of `form` is; the form's length for its
/// number of kept bytes.
fn place_of_kept(form: &Marked, n: usize) -> usize {
    (0..form.bytes.len())
        .filter(|&i| !form.is_dropped(i))
        .nth(n)
        .unwrap_or(form.bytes.len())
}

/// `text[start..end]`, which matched the kept bytes `kept.0..kept.1` of `form`, grown
/// over the dropped bytes of `form` just outside them (its own `-` and `_`) where the
/// text has the same: a token ending in `_` leaves nothing of it shown. Not before
/// `floor`.
fn widen(
    form: &[u8],
    kept: (usize, usize),
    text: &[u8],
    (mut start, mut end): (usize, usize),
    floor: usize,
) -> (usize, usize) {
    let marked = Marked::new(form);
    let mut before = place_of_kept(&marked, kept.0);
    while before > 0
        && start > floor
        && marked.is_dropped(before - 1)
        && text.get(start - 1) == form.get(before - 1)
    {
        before -= 1;
        start -= 1;
    }
    let mut after = match kept.1.checked_sub(1) {
        Some(last) => place_of_kept(&marked, last) + 1,
        None => before,
    };
    // A dropped byte is there in the form, so the text has it where the two agree.
    while marked.is_dropped(after) && text.get(end) == form.get(after) {
        after += 1;
        end += 1;
    }
    (start, end)
}

/// `spans` in order, overlapping ones made one (a piece found at an edge and by the
/// scan): the whole token a span holds stays named only when the other lies inside it.
fn merged(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(last) if span.start < last.end => {
                if span.end > last.end {
                    last.end = span.end;
                    last.found = Found::Part;
                }
            }
            _ => out.push(span),
        }
    }
    out
}

/// The kept bytes of a text from byte `at` on, before byte `end`, with where each is;
/// ends after a gap of more than [`MAX_GAP`] dropped bytes.
struct Kept<'a, 'b> {
    text: &'a Marked<'b>,
    at: usize,
    end: usize,
}

impl<'a, 'b> Kept<'a, 'b> {
    fn new(text: &'a Marked<'b>, at: usize, end: usize) -> Kept<'a, 'b> {
        Kept { text, at, end }
    }
}

impl Iterator for Kept<'_, '_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        let mut gap = 0;
        while self.at < self.end && self.text.is_dropped(self.at) {
            gap += 1;
            self.at += 1;
            if gap > MAX_GAP {
                self.at = self.end;
                return None;
            }
        }
        if self.at >= self.end {
            return None;
        }
        let b = *self.text.bytes.get(self.at)?;
        self.at += 1;
        Some((self.at - 1, b))
    }
}

/// The kept bytes of a text before byte `at`, backwards, not before `floor`, with where
/// each is; ends after a gap of more than [`MAX_GAP`] dropped bytes.
struct KeptBack<'a, 'b> {
    text: &'a Marked<'b>,
    at: usize,
    floor: usize,
}

impl<'a, 'b> KeptBack<'a, 'b> {
    fn new(text: &'a Marked<'b>, at: usize, floor: usize) -> KeptBack<'a, 'b> {
        KeptBack { text, at, floor }
    }
}

impl Iterator for KeptBack<'_, '_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        let mut gap = 0;
        while self.at > self.floor && self.text.is_dropped(self.at - 1) {
            gap += 1;
            self.at -= 1;
            if gap > MAX_GAP {
                self.at = self.floor;
                return None;
            }
        }
        if self.at <= self.floor {
            return None;
        }
        self.at -= 1;
        Some((self.at, *self.text.bytes.get(self.at)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept bytes of `text`, walked forwards and backwards (the same both ways).
    fn both_ways(text: &[u8]) -> Vec<u8> {
        let marked = Marked::new(text);
        let forwards: Vec<u8> = Kept::new(&marked, 0, text.len()).map(|(_, b)| b).collect();
        let mut backwards: Vec<u8> = KeptBack::new(&marked, text.len(), 0)
            .map(|(_, b)| b)
            .collect();
        backwards.reverse();
        assert_eq!(backwards, forwards, "{}", String::from_utf8_lossy(text));
        assert_eq!(core_of(text), forwards);
        forwards
    }

    proptest::proptest! {
        /// The one-pass `core_of` keeps what marking every separator first keeps, on texts
        /// dense with the bytes separators begin with (and the rest of one).
        #[test]
        fn core_of_keeps_what_marking_keeps(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "Z", "9", ".", " ", "\t", "\n", "-", "_", "+", "\\", "\\n", "\\u000a",
                    "\\u2028", "\u{2028}", "%0A", "%2", "%", "<br>", "<BR />", "<b", "&nbsp;",
                    "&#10;", "&#x0A;", "&", "&amp;", "é",
                ]),
                0..40,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(core_of(text.as_bytes()), Marked::new(text.as_bytes()).kept());
        }
    }

    #[test]
    fn separators_and_escapes_are_dropped_alike_forwards_and_backwards() {
        assert_eq!(both_ways(br"ab c-d_e\nf\\rg\th	i\x"), b"abcdefghix");
        // A gap wider than MAX_GAP ends the walk.
        let far = format!("ab{}cd", " ".repeat(MAX_GAP + 1));
        let marked = Marked::new(far.as_bytes());
        assert_eq!(Kept::new(&marked, 0, far.len()).count(), 2);
        assert_eq!(KeptBack::new(&marked, far.len(), 0).count(), 2);
    }

    /// Line breaks and spaces percent-encoded (either case) and `+` are dropped whole;
    /// other escapes, and a `%` without a blank's code after it, are kept.
    #[test]
    fn url_encoded_line_breaks_and_spaces_are_dropped() {
        assert_eq!(
            both_ways(b"ab%0Acd%0d%0Aef%20gh+ij%09kl%0cm"),
            b"abcdefghijklm"
        );
        assert_eq!(both_ways(b"a%2Fb%41c%2d%0"), b"a%2Fb%41c%2d%0");
        assert_eq!(both_ways(b"%%20a%"), b"%a%");
    }

    /// Line breaks and spaces escaped into JSON by their code (hex in either case) and
    /// HTML line breaks are dropped whole; other codes, other tags, a `<br` left open and
    /// a `u000a` with no backslash before it are kept.
    #[test]
    fn unicode_escaped_line_breaks_and_html_breaks_are_dropped() {
        assert_eq!(
            both_ways(br"ab\u000acd\u000D\u000Aef\u0020gh\u0009i"),
            b"abcdefghi"
        );
        assert_eq!(
            both_ways(b"ab<br>cd<br/>ef<br />gh<BR>ij<Br />k"),
            b"abcdefghijk"
        );
        assert_eq!(both_ways(br"a\u0041b\u00a0c"), b"au0041bu00a0c");
        assert_eq!(
            both_ways(b"a<b>c<bra>d<br x/>e<br"),
            b"a<b>c<bra>d<brx/>e<br"
        );
        assert_eq!(both_ways(b"au000ab"), b"au000ab");
    }

    /// An HTML line break with whitespace of any kind and count before its `/` or its
    /// `>` is dropped whole; one with more whitespace than [`MAX_GAP`] is not a break.
    #[test]
    fn html_breaks_with_any_whitespace_are_dropped() {
        assert_eq!(
            both_ways(b"ab<br  />cd<br\t/>ef<BR\r\n/>gh<bR   >ij"),
            b"abcdefghij"
        );
        let wide = format!("a<br{}/>b", " ".repeat(MAX_GAP + 1));
        assert_eq!(core_of(wide.as_bytes()), b"a<br/>b");
    }

    /// HTML character references to a blank (`&nbsp;` in any case, decimal or hex numbers
    /// in either case, leading zeros or not) are dropped whole; other references, a
    /// reference without its `;`, and a `&` alone are kept.
    #[test]
    fn html_references_to_blanks_are_dropped() {
        assert_eq!(
            both_ways(b"a&nbsp;b&NBSP;c&#10;d&#13;&#10;e&#x0a;f&#xA;g&#X0D;h&#32;i&#x0020;j&#160;k&#8232;l&#x2029;m"),
            b"abcdefghijklm"
        );
        assert_eq!(
            both_ways(b"a&amp;b&#65;c&#x41;d&#10e&#x;f&#;g&h&nbsp"),
            b"a&amp;b&#65;c&#x41;d&#10e&#x;f&#;g&h&nbsp"
        );
        // More digits than are read: not taken for a reference.
        assert_eq!(both_ways(b"a&#0000000010;b"), b"a&#0000000010;b");
    }

    /// The line and paragraph separators U+2028 and U+2029, escaped into JSON (hex in
    /// either case) or raw, are dropped whole; other characters beside them are kept.
    #[test]
    fn unicode_line_and_paragraph_separators_are_dropped() {
        assert_eq!(
            both_ways("a\\u2028b\\u2029c\u{2028}d\u{2029}e\u{2027}f".as_bytes()),
            "abcde\u{2027}f".as_bytes()
        );
        assert_eq!(both_ways(br"a\u2030b"), b"au2030b");
    }
}
