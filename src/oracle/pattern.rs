//! An expected event sequence as a tiny automaton: `a b+ c? d*` with greedy repetition.

use crate::model::{PatternItem, Repeat};
use std::sync::Arc;

/// Progress through one pattern.
#[derive(Debug, Clone)]
pub struct PatternState {
    /// Shared with the plan's expectation: a state (and every copy of it) costs no copy of
    /// the items.
    items: Arc<[PatternItem]>,
    pos: usize,
    count: u32,
    matched: u32,
}

/// What one event did to the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    /// Accepted; more events are needed.
    Progress,
    /// Accepted; the pattern is complete.
    Complete,
    /// This event cannot come next.
    Unexpected,
}

fn accepts_more(r: Repeat, count: u32) -> bool {
    matches!(r, Repeat::OneOrMore | Repeat::ZeroOrMore) || count == 0
}

fn satisfied(r: Repeat, count: u32) -> bool {
    matches!(r, Repeat::ZeroOrMore | Repeat::Optional) || count >= 1
}

/// Where a pattern stopped, without the pattern ([`PatternState::progress`]): what a
/// finished expectation keeps beside a pattern its owner holds anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pos: u32,
    count: u32,
    matched: u32,
}

impl PatternState {
    /// Where this state stands in its pattern.
    pub fn progress(&self) -> Progress {
        Progress {
            // A pattern is a scenario's line of event kinds: far below 2^32 items.
            pos: u32::try_from(self.pos).unwrap_or(u32::MAX),
            count: self.count,
            matched: self.matched,
        }
    }

    /// The state that stood at `at` in `items` ([`Self::progress`] of a state of them).
    pub fn resume(items: Arc<[PatternItem]>, at: Progress) -> Self {
        PatternState {
            items,
            pos: at.pos as usize,
            count: at.count,
            matched: at.matched,
        }
    }

    pub fn new(items: impl Into<Arc<[PatternItem]>>) -> Self {
        PatternState {
            items: items.into(),
            pos: 0,
            count: 0,
            matched: 0,
        }
    }

    /// Events matched so far.
    pub fn matched(&self) -> u32 {
        self.matched
    }

    pub fn feed(&mut self, event: &str) -> Fed {
        let Some(current) = self.items.get(self.pos) else {
            return Fed::Unexpected;
        };
        if current.event == event && accepts_more(current.repeat, self.count) {
            self.count += 1;
            return self.accepted();
        }
        if !satisfied(current.repeat, self.count) {
            return Fed::Unexpected;
        }
        for j in self.pos + 1..self.items.len() {
            let item = &self.items[j];
            if item.event == event {
                self.pos = j;
                self.count = 1;
                return self.accepted();
            }
            if !satisfied(item.repeat, 0) {
                break;
            }
        }
        Fed::Unexpected
    }

    fn accepted(&mut self) -> Fed {
        self.matched += 1;
        if self.is_complete() {
            Fed::Complete
        } else {
            Fed::Progress
        }
    }

    /// Complete once the current item is satisfied and everything after it may be absent.
    /// Trailing optional items are therefore not waited for.
    pub fn is_complete(&self) -> bool {
        let Some(current) = self.items.get(self.pos) else {
            return true;
        };
        satisfied(current.repeat, self.count)
            && self.items[self.pos + 1..]
                .iter()
                .all(|i| satisfied(i.repeat, 0))
    }

    /// The events still owed, written as a pattern (for violation messages).
    pub fn remaining(&self) -> String {
        let mut out = Vec::new();
        for (i, item) in self.items.iter().enumerate().skip(self.pos) {
            let count = if i == self.pos { self.count } else { 0 };
            if !satisfied(item.repeat, count) {
                // `+` kept: one or more is still what is owed.
                out.push(format!("{}{}", item.event, item.repeat.mark()));
            }
        }
        out.join(" ")
    }

    /// The required kinds still owed, in the pattern's order (each once): what
    /// [`Self::remaining`] writes, without its marks and optional items.
    pub fn owed_events(&self) -> Vec<&str> {
        let mut owed: Vec<&str> = Vec::new();
        for (i, item) in self.items.iter().enumerate().skip(self.pos) {
            let count = if i == self.pos { self.count } else { 0 };
            if !satisfied(item.repeat, count) && !owed.contains(&item.event.as_str()) {
                owed.push(item.event.as_str());
            }
        }
        owed
    }

    /// The pattern's items, as written.
    pub fn pattern(&self) -> &[PatternItem] {
        &self.items
    }

    /// Whether the pattern names this event type at all.
    pub fn mentions(&self, event: &str) -> bool {
        self.items.iter().any(|i| i.event == event)
    }

    /// The items as shared: what identifies this pattern without reading it.
    pub fn items(&self) -> &Arc<[PatternItem]> {
        &self.items
    }

    /// The items, the state given up: what a settled expectation hands on.
    pub fn into_items(self) -> Arc<[PatternItem]> {
        self.items
    }

    /// Indices of the required items that have arrived at least once: what "arrived"
    /// counts.
    pub fn arrived_required_items(&self) -> impl Iterator<Item = usize> + '_ {
        required_items(&self.items)
            .filter(move |&i| i < self.pos || (i == self.pos && self.count >= 1))
    }

    /// Required event types that have arrived at least once: what "arrived" counts.
    pub fn arrived_required(&self) -> impl Iterator<Item = &str> {
        self.arrived_required_items()
            .map(|i| self.items[i].event.as_str())
    }

    /// Event types with at least one required occurrence: what "expected" counts.
    pub fn required_events(&self) -> impl Iterator<Item = &str> {
        required_items(&self.items).map(|i| self.items[i].event.as_str())
    }
}

/// Indices of the items with at least one required occurrence (not `x?` or `x*`).
pub fn required_items(items: &[PatternItem]) -> impl Iterator<Item = usize> + '_ {
    items
        .iter()
        .enumerate()
        .filter(|(_, i)| !satisfied(i.repeat, 0))
        .map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> PatternState {
        let items: Vec<PatternItem> = s
            .split_whitespace()
            .map(|t| {
                let (event, repeat) = match t.chars().last() {
                    Some('+') => (&t[..t.len() - 1], Repeat::OneOrMore),
                    Some('*') => (&t[..t.len() - 1], Repeat::ZeroOrMore),
                    Some('?') => (&t[..t.len() - 1], Repeat::Optional),
                    _ => (t, Repeat::One),
                };
                PatternItem {
                    event: event.into(),
                    repeat,
                }
            })
            .collect();
        PatternState::new(items)
    }

    fn run(p: &str, events: &str) -> Vec<Fed> {
        let mut s = pat(p);
        events.split_whitespace().map(|e| s.feed(e)).collect()
    }

    const FIVE: &str = "started thinking+ executing completed done";

    #[test]
    fn golden_sequence_completes_on_the_last_event() {
        let r = run(
            FIVE,
            "started thinking thinking thinking executing completed done",
        );
        assert_eq!(r.last(), Some(&Fed::Complete));
        assert!(r[..r.len() - 1].iter().all(|f| *f == Fed::Progress));
    }

    #[test]
    fn missing_repetition_is_unexpected() {
        assert_eq!(
            run(FIVE, "started executing").last(),
            Some(&Fed::Unexpected)
        );
    }

    #[test]
    fn out_of_order_and_duplicates_are_unexpected() {
        assert_eq!(
            run(FIVE, "started thinking completed").last(),
            Some(&Fed::Unexpected)
        );
        assert_eq!(run(FIVE, "started started").last(), Some(&Fed::Unexpected));
        assert_eq!(run(FIVE, "thinking").last(), Some(&Fed::Unexpected));
    }

    #[test]
    fn optional_items_may_be_skipped() {
        assert_eq!(run("a b? c* d", "a d").last(), Some(&Fed::Complete));
        assert_eq!(run("a b? c* d", "a b c c d").last(), Some(&Fed::Complete));
        assert_eq!(run("a b? d", "a b b").last(), Some(&Fed::Unexpected));
    }

    #[test]
    fn remaining_names_what_is_owed() {
        let mut s = pat(FIVE);
        s.feed("started");
        // Written as the pattern writes it: one or more `thinking` still owed.
        assert_eq!(s.remaining(), "thinking+ executing completed done");
        s.feed("thinking");
        assert_eq!(s.remaining(), "executing completed done");
        assert_eq!(s.required_events().count(), 5);
    }
}
