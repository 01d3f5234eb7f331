//! The invariants every record is checked against, whatever expectation it answers: its
//! identity (a record naming another user's identity) and its sequence (numbers that go
//! back or skip), declared in `[oracles]` or learned by calibration.

use super::*;

impl ConnChecker {
    /// The identity oracle on `msg`, when the scenario declares an identity field. The
    /// tests that skip it are inlined into the per-message path and the judging is not:
    /// most runs judge neither identity nor sequence, and two calls that returned at once
    /// were ~30 instructions a message (cachegrind, the echo bench).
    #[inline(always)]
    pub(super) fn check_identity<J: Tree>(&mut self, msg: &J, now: Instant) {
        if self.identity_on && self.spec.identity.is_some() {
            self.judge_identity(msg, now);
        }
    }

    #[inline(never)]
    fn judge_identity<J: Tree>(&mut self, msg: &J, now: Instant) {
        let Some(field) = self.spec.identity.as_deref().filter(|_| self.identity_on) else {
            return;
        };
        let Some(value) = lookup(msg, field) else {
            return;
        };
        if value.text() == Some(self.who.sub.as_str()) {
            self.counts.identity_matched += 1;
        } else {
            // Quoted as the seen value is (JSON): `user_id = "u1"`, never `= u1` beside it.
            let expected = format!("{field} = {}", Value::from(self.who.sub.as_str()));
            self.violate(
                OracleKind::Identity,
                now,
                expected,
                format!("{field} = {value}"),
                None,
            );
        }
    }

    /// The sequence oracle on `msg`, when the scenario declares a sequence field (inlined
    /// test, out-of-line judging, as [`Self::check_identity`]).
    #[inline(always)]
    pub(super) fn check_sequence<J: Tree>(&mut self, msg: &J, kind: Option<&str>, now: Instant) {
        if self.spec.sequence.is_some() {
            self.judge_sequence(msg, kind, now);
        }
    }

    /// A record of `kind`, outside the sequence's `kinds`, on a connection where the
    /// sequence read no number yet: counted when it carries an integer at the sequence's
    /// field, what a kind spelled otherwise in the scenario reads as
    /// ([`crate::model::SequenceMissed`]).
    #[cold]
    fn missed_other_kind<J: Tree>(&mut self, msg: &J, kind: Option<&str>) {
        let spec = Arc::clone(&self.spec);
        let Some(field) = spec.sequence.as_deref() else {
            return;
        };
        if lookup(msg, field).and_then(sequence_number).is_none() {
            return;
        }
        let missed = self.counts.sequence_missed.get_or_insert_with(Box::default);
        missed.other_kinds += 1;
        if missed.other_kind.is_none() {
            missed.other_kind = kind.map(str::to_string);
        }
    }

    #[inline(never)]
    fn judge_sequence<J: Tree>(&mut self, msg: &J, kind: Option<&str>, now: Instant) {
        let Some(field) = self.spec.sequence.as_deref() else {
            return;
        };
        // Whether the `per` field is one the server writes at all (on any kind: `update`
        // records may carry the symbol where the numbered `status` ones do not). Read once:
        // its value scopes the sequence below.
        let per = self.spec.sequence_per.as_deref();
        let per_value = per.and_then(|per| lookup(msg, per));
        if per_value.is_some() {
            self.counts.sequence_scoped += 1;
        }
        // Only the kinds that carry the sequence, when the scenario names them.
        let kinds = &self.spec.sequence_kinds;
        if !kinds.is_empty() && !kind.is_some_and(|k| kinds.iter().any(|s| s == k)) {
            if self.counts.sequence_numbered == 0 {
                self.missed_other_kind(msg, kind);
            }
            return;
        }
        // A null carries no number: Discord's gateway sends `"s": null` on every
        // operation that is no dispatch (its Hello, a heartbeat's ACK).
        let Some(value) = lookup(msg, field).filter(|v| !v.null()) else {
            // Without `kinds` a record without the field is one the sequence skips.
            let named_kinds = !self.spec.sequence_kinds.is_empty();
            if self.counts.sequence_numbered == 0 && named_kinds && lookup(msg, field).is_none() {
                let missed = self.counts.sequence_missed.get_or_insert_with(Box::default);
                missed.unnumbered += 1;
                if missed.unnumbered_carried.is_empty() {
                    missed.unnumbered_carried = super::diagnosis::carried_names(msg);
                }
            }
            return;
        };
        let Some(seq) = sequence_number(value) else {
            let seen = format!("{field} = {value}");
            self.violate(
                OracleKind::Ordering,
                now,
                format!("integer {field}"),
                seen,
                None,
            );
            return;
        };
        // Per value of `per` (a symbol, a channel), each its own sequence; a record
        // without the field is in the one of no value.
        let scope = per.map(|per| {
            let key = per_value.map(|v| key_text(v)).unwrap_or_default();
            (per.to_string(), key)
        });
        self.counts.sequence_numbered += 1;
        let last = match &scope {
            Some((_, key)) => self.last_of(key),
            None => match self.last_seq {
                LastSeq::One(last) => Some(last),
                _ => None,
            },
        };
        if let Some(last) = last {
            // Gaps allowed: only a number that does not go up is out of order (a repeat, a
            // step back).
            let out_of_order = if self.spec.sequence_gaps {
                seq <= last
            } else {
                seq != last + 1
            };
            if out_of_order {
                let expected = if self.spec.sequence_gaps {
                    format!("{field} > {last}")
                } else {
                    format!("{field} = {}", last + 1)
                };
                // Which sequence, and what broke it, when the scenario scopes them: the
                // value of `per`, and the kind of the record.
                let whose = match &scope {
                    // A record without the field: the sequence of no value.
                    Some((per, key)) if key.is_empty() => format!(" (no {per})"),
                    Some((per, key)) => format!(" ({per} = {key})"),
                    None => String::new(),
                };
                let on = kind.map_or(String::new(), |k| format!(" on {k}"));
                self.violate(
                    OracleKind::Ordering,
                    now,
                    format!("{expected}{whose}"),
                    format!("{field} = {value}{on}"),
                    None,
                );
            }
        }
        match scope {
            Some((_, key)) => self.keep_last_of(key, seq),
            None => self.last_seq = LastSeq::One(seq),
        }
    }

    /// The last number of the sequence of `per` value `key` on this stream.
    fn last_of(&self, key: &str) -> Option<i64> {
        match &self.last_seq {
            LastSeq::Per(lasts) => lasts.iter().find(|(k, _)| &**k == key).map(|(_, n)| *n),
            _ => None,
        }
    }

    /// Keeps `seq` as the last number of `key`'s sequence, the most recent last: past
    /// [`SEQUENCES_KEPT`] values the least recent is dropped (its next number starts it
    /// again), so the memory follows the bound, not the feed.
    fn keep_last_of(&mut self, key: String, seq: i64) {
        if !matches!(self.last_seq, LastSeq::Per(_)) {
            self.last_seq = LastSeq::Per(Box::default());
        }
        let LastSeq::Per(lasts) = &mut self.last_seq else {
            return;
        };
        if let Some(at) = lasts.iter().position(|(k, _)| **k == *key) {
            lasts.remove(at);
        } else if lasts.len() >= SEQUENCES_KEPT {
            lasts.remove(0);
        }
        lasts.push((key.into_boxed_str(), seq));
    }

    /// Learned identity and sequence fields (a field the scenario declares is judged by the
    /// declared oracle only).
    /// Learned identity, on a message that is this connection's own: one its greeting or a
    /// correlated reply claims (the callers ask [`owns_its_claims`]). Calibration saw one
    /// connection at a time, so every message it saw was that connection's own; under load
    /// a message no expectation claims, or one an uncorrelated expectation after a request
    /// claims, may be another member's broadcast carrying that member's subject (a chat
    /// room, a SignalR group), which a correct server sends, so it is not judged by what
    /// was learned.
    #[inline(always)]
    pub(super) fn check_learned_identity<J: Tree>(&mut self, msg: &J, now: Instant) {
        // Most runs learned none (every answer runs this): no list made and judged empty.
        if self.learned_on && !self.spec.learned.identity.is_empty() {
            self.judge_learned_identity(msg, now);
        }
    }

    #[inline(never)]
    fn judge_learned_identity<J: Tree>(&mut self, msg: &J, now: Instant) {
        let ids = self.learned_ids(msg);
        self.judge_learned_ids(&ids, now);
    }

    /// The values `msg` carries at the learned identity fields the scenario does not
    /// declare itself: `(index in learned.identity, value)`.
    pub(super) fn learned_ids<J: Tree>(&self, msg: &J) -> Vec<(usize, Value)> {
        if !self.learned_on {
            return Vec::new();
        }
        let declared = self.spec.identity.as_deref();
        self.spec
            .learned
            .identity
            .iter()
            .enumerate()
            .filter(|(_, field)| declared != Some(field.as_str()))
            .filter_map(|(i, field)| lookup(msg, field).map(|v| (i, v.to_value())))
            .collect()
    }

    pub(super) fn judge_learned_ids(&mut self, ids: &[(usize, Value)], now: Instant) {
        for (i, value) in ids {
            if value.as_str() == Some(self.who.sub.as_str()) {
                continue;
            }
            let field = self
                .spec
                .learned
                .identity
                .get(*i)
                .cloned()
                .unwrap_or_default();
            // Quoted as the seen value is (JSON): `user_id = "u1"`, never `= u1` beside it.
            let expected = format!("{field} = {}", Value::from(self.who.sub.as_str()));
            self.violate_learned(
                OracleKind::Identity,
                now,
                expected,
                format!("{field} = {value}"),
            );
        }
    }

    /// Sets aside the learned identity values `ids` of a record of kind `kind` that came
    /// `at` and that an uncorrelated expectation claimed after a request
    /// ([`owns_its_claims`] false): in a room, any member's message of its kinds, whose
    /// subject is that member's from a correct server. Those carrying the connection's own
    /// subject are dropped at once; the rest wait for [`Self::settle_held_identity`].
    pub(super) fn hold_learned_ids(&mut self, kind: String, ids: Vec<(usize, Value)>, at: Instant) {
        let own = self.who.sub.as_str();
        if ids.iter().all(|(_, v)| v.as_str() == Some(own)) {
            return;
        }
        let held = &mut self.rare.get_or_insert_default().held_identity;
        if held.len() < HELD_IDENTITY_KEPT {
            held.push(HeldIdentity { kind, ids, at });
        }
    }

    /// Judges the learned identity findings set aside on this stream, now that it ends:
    /// those of a kind the stream then still held unclaimed records of (more of it came
    /// than the connection's expectations claimed: another member's broadcasts) are not
    /// judged; the rest are, as of when their record came. Called when the stream is reset
    /// and when the connection's run ends.
    pub fn settle_held_identity(&mut self) {
        let Some(held) = self
            .rare
            .as_mut()
            .map(|r| std::mem::take(&mut r.held_identity))
            .filter(|h| !h.is_empty())
        else {
            return;
        };
        for h in held {
            let broadcast = self.buffer.iter().any(|b| b.event == h.kind);
            if !broadcast {
                self.judge_learned_ids(&h.ids, h.at);
            }
        }
    }

    /// Learned sequence fields on `msg` (inlined test, out-of-line judging, as
    /// [`Self::check_identity`]).
    #[inline(always)]
    pub(super) fn check_learned_sequence<J: Tree>(&mut self, msg: &J, now: Instant) {
        if self.learned_on && !self.spec.learned.sequence.is_empty() {
            self.judge_learned_sequence(msg, now);
        }
    }

    #[inline(never)]
    fn judge_learned_sequence<J: Tree>(&mut self, msg: &J, now: Instant) {
        let spec = self.spec.clone();
        let learned = &spec.learned;
        // Out of the rare state while the violations are written, then put back.
        let mut last_of = std::mem::take(&mut self.rare.get_or_insert_default().learned_seq);
        last_of.resize(learned.sequence.len(), None);
        for (i, field) in learned.sequence.iter().enumerate() {
            if spec.sequence.as_deref() == Some(field.as_str()) {
                continue;
            }
            // Null carries no number (see `check_sequence`).
            let Some(value) = lookup(msg, field).filter(|v| !v.null()) else {
                continue;
            };
            let seq = sequence_number(value);
            let last = last_of.get(i).copied().flatten();
            if let Some(last) = last.filter(|l| seq != Some(l.saturating_add(1))) {
                let expected = format!("{field} = {}", last.saturating_add(1));
                self.violate_learned(
                    OracleKind::Ordering,
                    now,
                    expected,
                    format!("{field} = {value}"),
                );
            }
            if let Some(slot) = last_of.get_mut(i) {
                *slot = seq;
            }
        }
        if let Some(rare) = self.rare.as_mut() {
            rare.learned_seq = last_of;
        }
    }
}

/// A sequence field's number: a JSON integer, or a string that writes one in decimal
/// (`"42"`) or as a hexadecimal quantity (`"0x2a"`, how Ethereum's JSON-RPC writes every
/// number, block heights included); `None` for anything else.
pub fn sequence_number<J: Tree + ?Sized>(value: &J) -> Option<i64> {
    if let Some(n) = value.int() {
        return Some(n);
    }
    let text = value.text()?;
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            i64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}
