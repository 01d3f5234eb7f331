//! `[[group]]` tables: who connects, when, and with which token.

use super::placement::placement;
use super::steps::{steps, Sent};
use super::tokens::{forge, token_reuse};
use super::walk::{found, Ctx, Fields, Node};
use crate::model::{
    script_size, Arrival, Dist, Feed, FeedFormat, Group, CONNECTION_BYTES_ESTIMATE,
    MAX_ACTIONS_PER_CONNECTION, MAX_CONNECTIONS,
};
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

pub(super) const GROUP_KEYS: &[&str] = &[
    "name",
    "users",
    "connections_per_user",
    "arrival",
    "jitter",
    "token",
    "forge",
    "placement",
    "steps",
    "headers",
    "subprotocol",
    "feeder",
];
const ARRIVAL_KINDS: &[&str] = &["ramp", "rate", "burst", "collide"];
const BURST_NOW: Arrival = Arrival::Burst { at: Duration::ZERO };

/// All groups of the file; reports a missing or empty `[[group]]` list.
pub(super) fn groups(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Vec<Group> {
    let Some(node) = node else {
        cx.report(
            0..0,
            "missing [[group]]: a scenario needs at least one group",
        );
        return Vec::new();
    };
    let DeValue::Array(items) = node.get_ref() else {
        let message = format!(
            "group: expected [[group]] tables, found {}",
            found(node.get_ref())
        );
        cx.report(node.span(), message);
        return Vec::new();
    };
    if items.is_empty() {
        cx.report(node.span(), "group: expected at least one [[group]]");
    }
    let mut names = Names::new();
    items
        .iter()
        .filter_map(|item| {
            let group = group(cx, item, &mut names);
            cx.feed_columns = None;
            group
        })
        .collect()
}

fn group(cx: &mut Ctx<'_>, node: &Node<'_>, names: &mut Names) -> Option<Group> {
    let table = cx.table("[[group]]", node)?;
    let f = Fields::new(cx, table, node.span(), "[[group]]", GROUP_KEYS);
    let name = group_name(cx, &f, names);
    let f = f.with_owner(format!("group {name:?}"));
    // Before the steps and headers: their `{{feed.COLUMN}}` placeholders are checked
    // against its columns.
    let written = f.get("feeder");
    let feeder = written.and_then(|n| feeder(cx, n, &format!("group {name:?} feeder")));
    // A feeder written but refused (its problem already reported) leaves the columns
    // unknown: its placeholders are not also "the group has no feeder".
    cx.feed_columns = match (&feeder, written) {
        (Some(f), _) => Some(f.columns.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(Vec::new()),
    };
    let users = f
        .require(cx, "users")
        .and_then(|n| f.int(cx, "users", n, 1, u32::MAX.into()));
    let connections = f.int_or(cx, "connections_per_user", 1, u32::MAX.into(), 1);
    let mut sent = Sent::for_group(users.map(|u| u.max(0) as u64 * connections.max(0) as u64));
    let steps = match f.require(cx, "steps") {
        Some(node) => steps(cx, node, &mut sent),
        None => Vec::new(),
    };
    let users = users.and_then(|u| u32::try_from(u).ok());
    if let (Some(users), Ok(per_user)) = (users, u32::try_from(connections)) {
        size_limits(cx, &f, u64::from(users) * u64::from(per_user), &steps);
    }
    Some(Group {
        users: users.unwrap_or(1),
        connections_per_user: u32::try_from(connections).unwrap_or(1),
        arrival: arrival(cx, f.get("arrival")),
        jitter: f.dist_or(cx, "jitter", Dist::ZERO),
        token: token_reuse(cx, f.get("token"), users),
        forge: f.get("forge").and_then(|n| forge(cx, n)),
        placement: f
            .get("placement")
            .map(|n| placement(cx, n, &format!("group {name:?} placement"))),
        headers: f
            .get("headers")
            .map(|n| super::auth::headers(cx, n, &format!("group {name:?} headers")))
            .unwrap_or_default(),
        subprotocols: f
            .get("subprotocol")
            .map(|n| super::auth::subprotocols(cx, n, &format!("group {name:?} subprotocol")))
            .unwrap_or_default(),
        feeder,
        name,
        steps,
    })
}

/// Refuses a group whose size cannot fit: more connections than a plan holds, or a script
/// that expands to more actions than a connection counts. The figures are exact (u64:
/// `users × connections_per_user` of two u32s cannot overflow it).
fn size_limits(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, conns: u64, steps: &[crate::model::Step]) {
    if conns > MAX_CONNECTIONS {
        let span = f.get("users").map_or(0..0, Node::span);
        let need = conns.saturating_mul(CONNECTION_BYTES_ESTIMATE);
        cx.report(
            span,
            format!(
                "users × connections_per_user = {conns} connections; a scenario holds at most \
                 {MAX_CONNECTIONS} (about {} KiB each while open: {conns} would need about {} GiB)",
                CONNECTION_BYTES_ESTIMATE / 1024,
                need >> 30
            ),
        );
    }
    let actions = script_size(steps).actions;
    if actions > MAX_ACTIONS_PER_CONNECTION {
        let span = f.get("steps").map_or(0..0, Node::span);
        cx.report(
            span,
            format!(
                "steps: the script expands to {actions} actions per connection (each repeat \
                 multiplies its steps); at most {MAX_ACTIONS_PER_CONNECTION}"
            ),
        );
    }
}

/// The group's name, checked against the names of earlier groups (a map, not a scan:
/// a file with tens of thousands of groups validates in linear time).
fn group_name(cx: &mut Ctx<'_>, f: &Fields<'_, '_>, names: &mut Names) -> String {
    let name = f.req_text(cx, "name");
    let Some(node) = f.get("name") else {
        return name;
    };
    match names.get(&name) {
        Some(first) if !name.is_empty() => {
            let (line, _) = cx.position(*first);
            cx.report(
                node.span(),
                format!("duplicate group name {name:?} (first used on line {line})"),
            );
        }
        _ => {
            names.insert(name.clone(), node.span().start);
        }
    }
    name
}

/// Group names seen so far, with the byte offset of their first use.
type Names = HashMap<String, usize>;

fn arrival(cx: &mut Ctx<'_>, node: Option<&Node<'_>>) -> Arrival {
    let Some(node) = node else { return BURST_NOW };
    match node.get_ref() {
        DeValue::String(s) if s == "burst" => BURST_NOW,
        DeValue::String(s) if s == "collide" => Arrival::Collide { at: Duration::ZERO },
        DeValue::Table(table) => arrival_table(cx, table, node.span()),
        other => {
            let hint = match other {
                DeValue::String(s) => {
                    crate::model::words::did_you_mean(s, ["burst", "collide", "ramp", "rate"])
                }
                _ => String::new(),
            };
            let message = format!(
                "arrival: expected \"burst\", \"collide\" or a table like {{ ramp = \"5s\" }}, \
                 {{ rate = \"200/s\" }}, {{ burst = \"0s\" }}, {{ collide = \"0s\" }}, found {}{hint}",
                found(other)
            );
            cx.report(node.span(), message);
            BURST_NOW
        }
    }
}

fn arrival_table(cx: &mut Ctx<'_>, table: &DeTable<'_>, span: Range<usize>) -> Arrival {
    let Some(kind) = cx.one_of("arrival", table, span.clone(), ARRIVAL_KINDS) else {
        return BURST_NOW;
    };
    let known: &[&str] = if kind == "burst" {
        &["burst"]
    } else if kind == "collide" {
        &["collide"]
    } else {
        &[kind, "start"]
    };
    let f = Fields::new(cx, table, span, "arrival", known).with_owner("arrival");
    let start = f.duration_or(cx, "start", Duration::ZERO);
    match kind {
        "ramp" => Arrival::Ramp {
            start,
            over: f.duration_or(cx, "ramp", Duration::ZERO),
        },
        "rate" => Arrival::Rate {
            start,
            per_sec: f.get("rate").map_or(1.0, |n| rate(cx, n)),
        },
        "collide" => Arrival::Collide {
            at: f.duration_or(cx, "collide", Duration::ZERO),
        },
        _ => Arrival::Burst {
            at: f.duration_or(cx, "burst", Duration::ZERO),
        },
    }
}

/// `"200/s"` or `"30/m"` as connections per second.
fn rate(cx: &mut Ctx<'_>, node: &Node<'_>) -> f64 {
    let Some(text) = cx.string("rate", node) else {
        return 1.0;
    };
    match parse_rate(text) {
        Some(per_sec) => per_sec,
        None => {
            let message = format!(
                "rate: expected a positive rate like \"200/s\" or \"30/m\", found {text:?}"
            );
            cx.report(node.span(), message);
            1.0
        }
    }
}

fn parse_rate(text: &str) -> Option<f64> {
    let (count, unit) = text.trim().split_once('/')?;
    let count = count.trim();
    if count.is_empty() || !count.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let count: f64 = count.parse().ok()?;
    let per_sec = match unit.trim() {
        "s" => count,
        "m" => count / 60.0,
        _ => return None,
    };
    (per_sec.is_finite() && per_sec > 0.0).then_some(per_sec)
}

/// `feeder = { file = "users.csv" }` (format from the extension, or `format = "csv"` /
/// `"jsonl"`): read now, so a malformed row is a problem of this file, naming the row.
fn feeder(cx: &mut Ctx<'_>, node: &Node<'_>, section: &str) -> Option<Feed> {
    let table = cx.table(section, node)?;
    let f = Fields::new(cx, table, node.span(), section, &["file", "format"]).with_owner(section);
    let file = f.req_text(cx, "file");
    let format = match f.opt_str(cx, "format").as_deref() {
        Some("csv") => Some(FeedFormat::Csv),
        Some("jsonl") => Some(FeedFormat::Jsonl),
        Some(other) => {
            let message =
                format!("{section} format: expected \"csv\" or \"jsonl\", found {other:?}");
            let span = f.get("format").map_or(node.span(), Node::span);
            cx.report(span, message);
            return None;
        }
        None => crate::scenario::feed::format_of(&file),
    };
    let Some(format) = format else {
        let message = format!(
            "{section}: cannot tell the format of {file:?} from its name (.csv, .jsonl, .ndjson); \
             add format = \"csv\" or \"jsonl\""
        );
        cx.report(node.span(), message);
        return None;
    };
    let path = cx.resolve(&file);
    match crate::scenario::feed::read(&path, format) {
        Ok((columns, rows)) => Some(Feed {
            path,
            format,
            columns,
            rows: std::sync::Arc::new(rows),
        }),
        Err(e) => {
            cx.report(node.span(), format!("{section}: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200/s"), Some(200.0));
        assert_eq!(parse_rate("30/m"), Some(0.5));
        assert_eq!(parse_rate("2.5 / s"), Some(2.5));
        for bad in ["200", "0/s", "-1/s", "1/h", "x/s", "/s", "1e400/s"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }
}
