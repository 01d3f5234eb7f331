//! What a failed expectation's violation says came instead: the records no expectation
//! claimed, the kinds, fields and values an expectation saw but could not take (a `where`
//! on a field the record lacks, another value, a type written otherwise), and what could
//! not be read at all.

use super::*;

impl ConnChecker {
    /// Marks the unmet expectations whose kinds came holding, at their correlation path,
    /// a value `sent` says this connection's requests sent ([`Misread::OtherCorrelationValue`]'s
    /// `sent`): answers come to the wrong request, not a path that reads something else,
    /// though the request they belong to never had an expectation open (the run ended
    /// first). Their witnesses say so. Called once, when the connection's run ends.
    pub fn mark_values_sent(&mut self, sent: impl Fn(&str) -> bool) {
        for v in &mut self.violations {
            let Some(Misread::OtherCorrelationValue {
                field,
                held,
                id_like: true,
                sent: marked,
                ..
            }) = &mut v.misread
            else {
                continue;
            };
            if *marked || !sent(held) {
                continue;
            }
            *marked = true;
            let was = other_value_note(field, held, true, false);
            v.seen = v
                .seen
                .replace(&was, &other_value_note(field, held, true, true));
        }
    }

    /// A record of kind `event` no open expectation claimed: notes, on each open
    /// uncorrelated expectation this record of its pattern's kinds could have met but for
    /// a `where` test on a field the record lacks, that test ([`Strays::untested`]): the
    /// first only.
    pub(super) fn note_untested<J: Tree>(&mut self, event: &str, msg: &J) {
        let captures = &self.captures;
        for p in &mut self.pending {
            note_untested_on(p, event, msg, captures);
        }
    }

    /// An uncorrelated expectation `p` that opens and claims nothing notes, as strays, the
    /// records of kinds no step names that came since the connection's last request (kept
    /// in [`ConnChecker::ignored`]), as it notes those that come while it is open: the
    /// answer may have come before it opened, of a kind it spells otherwise (`mesage` for
    /// the `message` the server sent), which the verdict tells from a loss
    /// ([`Misread::OtherKinds`]).
    pub(super) fn note_ignored_since_request(&self, p: &mut Pending) {
        if p.absent || p.correlate.is_some() {
            return;
        }
        let Some(request) = self.last_request else {
            return;
        };
        for ignored in self.ignored.iter().filter(|i| i.at >= request) {
            note_stray(p, &ignored.kind);
        }
    }

    /// [`Self::note_untested`] for an uncorrelated expectation `p` that opens and claims
    /// nothing of the buffer: the records of its kinds that came before it (since the
    /// connection's last request: what came before that answers no request of it) and fail its
    /// `where` tests are noted as if they had come while it was open (what it saw says
    /// which test they failed, not "nothing": a misspelled path reads as one).
    pub(super) fn note_buffered_untested(&self, p: &mut Pending) {
        if p.absent || p.correlate.is_some() || p.checks().is_empty() {
            return;
        }
        let since = self.last_request;
        for b in &self.buffer {
            let after_request = since.is_some_and(|r| b.at >= r);
            if let (Some(body), true) = (&b.body, after_request) {
                note_untested_on(p, &b.event, body, &self.captures);
            }
        }
    }

    /// Where in the buffer an error event correlated with `p` waits: its request's answer,
    /// come before `p` opened (`p` then settles as errored, as on its arrival).
    pub(super) fn buffered_error_for(&self, p: &Pending) -> Option<usize> {
        if p.absent || p.correlate.is_none() || p.state.mentions(&self.spec.error_event) {
            return None;
        }
        self.buffer
            .iter()
            .position(|b| b.event == self.spec.error_event && belongs(p, b))
    }

    /// A correlated expectation that opens and claims nothing notes the first buffered
    /// record of its kinds holding another value at its field ([`Strays::other_value`]),
    /// as [`Self::note_fieldless`] notes one that comes while it is open.
    pub(super) fn note_buffered_other_value(&self, p: &mut Pending) {
        let Some((field, value)) = &p.correlate else {
            return;
        };
        let Some(bit) = self.correlate_fields.iter().position(|f| f == field) else {
            return;
        };
        let mask = u32::try_from(bit)
            .ok()
            .and_then(|b| 1u8.checked_shl(b))
            .unwrap_or(0);
        // Only what came after its request went out can have been its answer: a record
        // buffered before (another request's late answer) names no misreading of its own.
        let sent = p.sent_at.map(|(_, actual)| actual);
        let Some((held, no_id)) = self
            .buffer
            .iter()
            .filter(|b| p.state.mentions(&b.event))
            .filter(|b| sent.is_none_or(|sent| b.at >= sent))
            .find_map(|b| {
                let (_, held) = b.keys.iter().find(|(f, v)| f == field && v != value)?;
                Some((held, b.no_ids & mask != 0))
            })
        else {
            return;
        };
        let held = excerpt(held, NO_ID_BYTES);
        p.strays.get_or_insert_with(Box::default).other_value = Some((held, !no_id));
    }

    /// A record of kind `event` no open expectation claimed: each open correlated one whose
    /// pattern names the kind, and which the record lacks the correlation field of, notes
    /// it ([`Strays::fieldless`]): its answer may be this record, under another field; one
    /// that holds the field with another value notes the first such value
    /// ([`Strays::other_value`]), unless that value is a finished expectation's.
    pub(super) fn note_fieldless<J: Tree>(&mut self, event: &str, msg: &J) {
        // A record for a request whose expectation finished (a late answer, the next
        // request's window open when it came) is no answer held under another value: its
        // value is its own request's.
        let finished = self.finished(msg);
        for p in &mut self.pending {
            let Some((field, _)) = &p.correlate else {
                continue;
            };
            if p.absent || !p.state.mentions(event) {
                continue;
            }
            match lookup(msg, field) {
                None => {
                    let strays = p.strays.get_or_insert_with(Box::default);
                    if strays.fieldless == 0 {
                        strays.carried = carried_names(msg);
                    }
                    strays.fieldless += 1;
                    if strays.fieldless_kinds.len() < STRAYS_NAMED
                        && !strays.fieldless_kinds.iter().any(|k| k == event)
                    {
                        strays.fieldless_kinds.push(event.to_string());
                    }
                }
                Some(_) if finished => {}
                Some(held) => {
                    let strays = p.strays.get_or_insert_with(Box::default);
                    if strays.other_value.is_none() {
                        let no_id = is_no_id(held);
                        let shown = match no_id {
                            true => held.to_value().to_string(),
                            false => key_text(held),
                        };
                        strays.other_value = Some((excerpt(&shown, NO_ID_BYTES), !no_id));
                    }
                }
            }
        }
    }

    /// [`Self::note_field_read`] for the correlation field at `at` in `correlate_fields`.
    pub(super) fn note_field_at(&mut self, at: Option<usize>) {
        if let Some(field) = at.and_then(|i| self.correlate_fields.get(i)).cloned() {
            self.note_field_read(&field);
        }
    }

    /// Counts correlation field `field` as read ([`ExpectCounts::correlated_met`]): an
    /// expectation correlated on it was met, or a late answer carried a request's value
    /// there. The set is filled once per field: no string made once it holds it.
    pub(super) fn note_field_read(&mut self, field: &str) {
        if !self.counts.correlated_met.contains(field) {
            self.counts.correlated_met.insert(field.to_string());
        }
    }

    /// Counts a record of kind `event` that no step names and that names no request
    /// ([`ExpectCounts::unclaimed`]) once its kind came twice on this stream: a kind that
    /// comes once (a greeting the script does not wait for) says the server spoke, and is
    /// left to count as an answer may; a heartbeat repeats. Up to [`UNCLAIMED_KINDS`]
    /// kinds are told apart; past them every such record counts.
    pub(super) fn count_unclaimed(&mut self, event: &str) {
        let seen = &mut self.unclaimed_seen;
        let known = seen.len();
        let counted = match seen.iter_mut().find(|(kind, _)| kind == event) {
            Some((_, n)) => {
                *n = n.saturating_add(1);
                // The second counts the first too.
                if *n == 2 {
                    2
                } else {
                    1
                }
            }
            None if known < UNCLAIMED_KINDS => {
                seen.push((event.to_string(), 1));
                0
            }
            None => 1,
        };
        if counted > 0 {
            self.counts.unclaimed += counted;
            if self.counts.unclaimed_kind.is_none() {
                self.counts.unclaimed_kind = Some(event.into());
            }
        }
    }
}

/// The deepest ancestor of field `path` that `msg` holds, with its value: what came where
/// the tested field was not (`result = "fast-0"` for a test of `result.user`: another
/// request's answer). `None` when not even the first segment is there.
pub(super) fn nearest_held<J: Tree>(msg: &J, path: &str) -> Option<String> {
    let separator = if path.starts_with('/') { '/' } else { '.' };
    let mut at = path;
    while let Some(cut) = at.rfind(separator) {
        at = &at[..cut];
        if at.is_empty() {
            return None;
        }
        if let Some(v) = lookup(msg, at) {
            return Some(format!(
                "{at} = {}",
                excerpt(&v.to_value().to_string(), NO_ID_BYTES)
            ));
        }
    }
    None
}

/// `(wanted, held)` as JSON when `test` wants a value equal to `held` but for its JSON type
/// (`"true"` for `true`, `"3"` for `3`): a type slip in the scenario.
pub(super) fn type_slip<J: Tree>(
    test: &FieldTest,
    held: &J,
    captures: &BTreeMap<String, Value>,
) -> Option<(String, String)> {
    let Test::Equals(wanted) = &test.test else {
        return None;
    };
    let wanted = fill(wanted, captures);
    let held = held.to_value();
    let same_text = key_text(&wanted) == key_text(&held);
    let other_type = std::mem::discriminant(&wanted) != std::mem::discriminant(&held);
    (same_text && other_type).then(|| (wanted.to_string(), held.to_string()))
}

/// The first few top-level field names `msg` carries ([`CARRIED_NAMED`]), for a
/// misreading's hint.
pub(super) fn carried_names<J: Tree>(msg: &J) -> Vec<String> {
    msg.member_names()
        .unwrap_or_default()
        .into_iter()
        .take(CARRIED_NAMED)
        .map(str::to_string)
        .collect()
}

/// How `p`, unmet at its deadline, may have been answered in a shape it does not read:
/// none of its kinds came for it, and records of its kinds came without its correlation
/// field; or records of other kinds came correlated with it, whether or not some of its
/// own kinds came too ([`Misread`]).
pub(super) fn misread_of(p: &Pending) -> Option<Misread> {
    let strays = p.strays.as_deref()?;
    if p.absent {
        return None;
    }
    let kinds: Vec<String> = p.state.required_events().map(str::to_string).collect();
    match &p.correlate {
        // A kind of its own that came correlated shows the field is read: only an
        // expectation that got none of its kinds can blame `correlate`.
        Some((field, _)) if strays.fieldless > 0 && p.seen_count == 0 => {
            Some(Misread::NoCorrelationField {
                field: field.clone(),
                carried: strays.carried.clone(),
                kinds,
                came_with: Vec::new(),
            })
        }
        // Its first kinds came correlated, and every kind still owed came, only without
        // the field: the server stamps the pattern's first answers, not the rest.
        Some((field, _)) if strays.fieldless > 0 && owed_came_fieldless(p, strays) => {
            Some(Misread::NoCorrelationField {
                field: field.clone(),
                carried: strays.carried.clone(),
                kinds: p
                    .state
                    .owed_events()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                came_with: p.seen.split(' ').map(str::to_string).collect(),
            })
        }
        Some((field, _)) if p.seen_count == 0 && strays.other_value.is_some() => {
            let (held, id_like) = strays.other_value.clone().unwrap_or_default();
            Some(Misread::OtherCorrelationValue {
                field: field.clone(),
                held,
                id_like,
                sent: false,
                kinds,
            })
        }
        // Records of its kinds came and were let pass for a field they do not carry, or
        // carry as another type.
        None if p.seen_count == 0 && strays.untested.is_some() => strays.untested.clone(),
        // A misnamed kind beside correctly named ones (`agent_started agent_complete`
        // answered `agent_started`, `agent_completed`) is as much a misreading as one
        // alone; the verdict tells it from a lost kind beside acks ([`Misread::OtherKinds`]).
        _ if strays.count > 0 => Some(Misread::OtherKinds {
            came: strays.kinds.clone(),
            kinds,
        }),
        _ => None,
    }
}

/// Whether `p`, some of whose kinds came correlated, owes only kinds that came while it
/// was open without its correlation field, and no record of them with it.
fn owed_came_fieldless(p: &Pending, strays: &Strays) -> bool {
    let owed = p.state.owed_events();
    p.seen_count > 0
        && !owed.is_empty()
        && owed
            .iter()
            .all(|k| strays.fieldless_kinds.iter().any(|f| f == k))
}

/// Whether the latest kind noted for `p` is `event`.
pub(super) fn last_seen_is(p: &Pending, event: &str) -> bool {
    p.seen_count > 0
        && p.seen
            .strip_suffix(event)
            .is_some_and(|before| before.is_empty() || before.ends_with(' '))
}

pub(super) fn note_seen(p: &mut Pending, event: &str) {
    if p.seen_count < SEEN_KEPT {
        if p.seen_count > 0 {
            p.seen.push(' ');
        }
        p.seen.push_str(event);
        p.seen_count += 1;
    }
}

/// A record of `event`, a kind `p`'s pattern does not name, correlated with it (or, for an
/// uncorrelated `p`, of a kind no step names, come while it waited): counted, and named
/// while few are.
pub(super) fn note_stray(p: &mut Pending, event: &str) {
    let strays = p.strays.get_or_insert_with(Box::default);
    strays.count += 1;
    if strays.kinds.iter().any(|k| k == event) {
        return;
    }
    if strays.kinds.len() < STRAYS_NAMED {
        strays.kinds.push(event.to_string());
    } else {
        strays.more = true;
    }
}

/// What an expectation saw, for its witness: when that was nothing, what the connection
/// received that no expectation could read (`unread`; `type_field` is the field kinds are
/// read from); then the records it received that no expectation claimed (`buffer`), which
/// often say why (a refusal the scenario does not declare, an error of another kind).
/// Built only when a violation is written.
pub(super) fn seen_text(
    p: &Pending,
    unread: &Unread,
    unclaimed: (&VecDeque<Buffered>, &VecDeque<Ignored>),
    type_field: &str,
) -> String {
    let mut seen = read_text(p, unread, type_field);
    if let Some(unclaimed) = unclaimed_text(unclaimed) {
        let _ = write!(seen, " ({unclaimed})");
    }
    seen
}

/// The records still waiting in `buffer` (received, claimed by no expectation), for a
/// witness: `unclaimed: {"type":"disconnect","reason":"unauthorized"}`, the latest
/// [`UNCLAIMED_SHOWN`] (`unclaimed, the latest 3 of 5: ...`), each its JSON cut at
/// [`UNCLAIMED_BYTES`] when the checker kept bodies, else its kind. `None` when there are
/// none.
pub(super) fn unclaimed_text(
    (buffer, ignored): (&VecDeque<Buffered>, &VecDeque<Ignored>),
) -> Option<String> {
    let total = buffer.len() + ignored.len();
    if total == 0 {
        return None;
    }
    // Both in arrival order: the latest of the two together.
    let mut latest: Vec<(Instant, String)> = buffer
        .iter()
        .skip(buffer.len().saturating_sub(UNCLAIMED_SHOWN))
        .map(|b| {
            let text = match &b.body {
                Some(body) => excerpt(&body.to_string(), UNCLAIMED_BYTES),
                None => b.event.clone(),
            };
            (b.at, text)
        })
        .chain(ignored.iter().map(|i| (i.at, i.shown.clone())))
        .collect();
    latest.sort_by_key(|(at, _)| *at);
    let skipped = latest.len().saturating_sub(UNCLAIMED_SHOWN);
    let shown: Vec<String> = latest.into_iter().skip(skipped).map(|(_, t)| t).collect();
    let label = match total.saturating_sub(shown.len()) {
        0 => "unclaimed".to_string(),
        _ => format!("unclaimed, the latest {} of {}", shown.len(), total),
    };
    Some(format!("{label}: {}", shown.join(", ")))
}

/// What an expectation's pattern saw, or what the connection received that no
/// expectation could read when that was nothing (see [`seen_text`]).
pub(super) fn read_text(p: &Pending, unread: &Unread, type_field: &str) -> String {
    // Records of its kinds came and failed its `where`: the kinds were read, so what the
    // connection could not read (kindless records, say) is no explanation of it, and its
    // advice on where the kind lives would send the user the wrong way.
    let failed_where = p.correlate.is_none()
        && p.seen_count == 0
        && p.strays.as_deref().is_some_and(|s| s.where_failed > 0);
    let mut text = if failed_where {
        "nothing".to_string()
    } else {
        read_pattern_text(p, unread, type_field)
    };
    // An uncorrelated expectation's strays are records no step names, which the witness
    // shows as unclaimed.
    let correlated = p.correlate.is_some();
    if let Some(strays) = p.strays.as_deref().filter(|s| s.count > 0 && correlated) {
        let n = strays.count;
        let more = if strays.more { ", …" } else { "" };
        let _ = write!(
            text,
            " ({n} correlated record{} of kinds the pattern does not name: {}{more})",
            if n == 1 { "" } else { "s" },
            strays.kinds.join(", ")
        );
    }
    if let (Some(strays), None, 0) = (p.strays.as_deref(), &p.correlate, p.seen_count) {
        if let (n @ 1.., Some(first)) = (strays.where_failed, &strays.where_failed_first) {
            let _ = write!(
                text,
                " ({n} record{} of its kinds failed its where, the first {first})",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    if let (Some(strays), Some((field, _))) = (p.strays.as_deref(), &p.correlate) {
        if strays.fieldless > 0 {
            let n = strays.fieldless;
            let _ = write!(
                text,
                " ({n} record{} of its kinds without {field:?}, carrying {})",
                if n == 1 { "" } else { "s" },
                strays.carried.join(", ")
            );
        }
        if let (Some((held, id_like)), 0) = (&strays.other_value, p.seen_count) {
            // Another request's answer, or a path that names another field.
            text.push_str(&other_value_note(field, held, *id_like, false));
        }
    }
    text
}

/// [`read_text`] but the stray kinds.
pub(super) fn read_pattern_text(p: &Pending, unread: &Unread, type_field: &str) -> String {
    if p.seen_count > 0 {
        return p.seen.clone();
    }
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut parts = Vec::new();
    if unread.not_json > 0 {
        let n = unread.not_json;
        parts.push(format!(
            "{n} record{} that {} not JSON, or nest deeper than 127 levels: does the protocol need [oracles] record_separator?",
            plural(n),
            if n == 1 { "is" } else { "are" }
        ));
    }
    if unread.binary > 0 {
        let n = unread.binary;
        parts.push(format!(
            "{n} binary frame{}: the oracles read JSON text",
            plural(n)
        ));
    }
    if unread.kindless > 0 {
        let n = unread.kindless;
        let shape = unread.kindless_shape.as_deref().unwrap_or("");
        parts.push(format!(
            "{n} JSON record{} without a kind, the first {shape}: is the kind in another \
             field than type_field {type_field:?}, or does it need an [oracles.kinds] rule?",
            plural(n)
        ));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        format!("nothing readable ({})", parts.join("; "))
    }
}

/// What an unmet expectation's witness says of another value its kinds came with at its
/// correlation path: ` (its kinds came with "id" = "8", not its own)`; `sent`: one this
/// connection's requests sent ([`ConnChecker::mark_values_sent`]).
pub(super) fn other_value_note(field: &str, held: &str, id_like: bool, sent: bool) -> String {
    let held = if id_like {
        format!("{held:?}")
    } else {
        held.to_string()
    };
    let whose = if sent {
        "another request's this connection sent"
    } else {
        "not its own"
    };
    format!(" (its kinds came with {field:?} = {held}, {whose})")
}

/// Notes on `p`, an open uncorrelated expectation, a record of kind `event` it could have
/// met but for a `where` test ([`Strays::untested`], [`Strays::where_failed`]): the first
/// of each only.
fn note_untested_on<J: Tree>(
    p: &mut Pending,
    event: &str,
    msg: &J,
    captures: &BTreeMap<String, Value>,
) {
    if p.absent || p.correlate.is_some() || p.checks().is_empty() || !in_pattern(p, event) {
        return;
    }
    let Some(test) = first_failed(p, msg, captures) else {
        return;
    };
    let other_value =
        lookup(msg, &test.path).filter(|held| type_slip(test, *held, captures).is_none());
    if let Some(held) = other_value {
        // Another value: someone else's record, or the answer failing its test.
        let first = p
            .strays
            .as_ref()
            .is_none_or(|s| s.where_failed_first.is_none())
            .then(|| {
                let value = excerpt(&held.to_value().to_string(), NO_ID_BYTES);
                // "(group2) held /arguments/1 = …": what that record held, not
                // what the test wants ("group2 with …" read as the expected value).
                format!("({event}) held {} = {value}", test.path)
            });
        let strays = p.strays.get_or_insert_with(Box::default);
        strays.where_failed += 1;
        if first.is_some() {
            strays.where_failed_first = first;
        }
        return;
    }
    if p.strays.as_ref().is_some_and(|s| s.untested.is_some()) {
        return;
    }
    let kinds = || p.state.required_events().map(str::to_string).collect();
    let untested = match lookup(msg, &test.path) {
        None => Misread::NoCheckedField {
            path: test.path.clone(),
            carried: carried_names(msg),
            kinds: kinds(),
        },
        Some(held) => match type_slip(test, held, captures) {
            Some((wanted, held)) => Misread::WrongType {
                path: test.path.clone(),
                wanted,
                held,
                kinds: kinds(),
            },
            None => return,
        },
    };
    p.strays.get_or_insert_with(Box::default).untested = Some(untested);
}
