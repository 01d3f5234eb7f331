//! The verdict, table-driven: each row is how every attempt of a small plan ended, the
//! violations and the stop reason, and the verdict (and a phrase of its hint) it must give.

use super::misreading::*;
use super::*;
use crate::model::{Attempt, Forge, StepPlace};

/// The target the judged runs dialled.
const TARGET: &str = "ws://127.0.0.1:9/ws";

/// Four connections, one token each; connections 2 and 3 carry forged (bad) tokens.
fn plan() -> Plan {
    let text = "name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{ close = 1000 }]\n";
    let scenario = crate::scenario::load_str(text, "v.toml").unwrap();
    let mut plan = crate::plan::build(&scenario, 1);
    for slot in [2, 3] {
        plan.tokens[slot].forge = Some(Forge::Bad {
            name: crate::model::BadToken::AlgNone,
        });
    }
    plan
}

/// How one attempt ended.
#[derive(Clone, Copy)]
enum End {
    Accepted,
    Refused(u16),
    RefusedAfterUpgrade(u16),
    Failed(Cause2),
    Aborted,
    /// Cut by the run's end while it waited for the 101.
    CutWaiting,
}

#[derive(Clone, Copy)]
enum Cause2 {
    Refused,
    Reset,
    Timeout,
    Http404,
    Ports,
    Login,
}

fn attempt(end: End) -> Attempt {
    let mut a = Attempt::new(10);
    match end {
        End::Accepted => {
            a.upgraded_us = Some(20);
            a.accepted_us = Some(30);
            a.outcome = Outcome::Accepted;
            a.cause = Some(Cause::ClientClose(1000));
        }
        End::Refused(status) => {
            a.outcome = Outcome::Rejected;
            a.cause = Some(Cause::Http(status));
        }
        End::RefusedAfterUpgrade(code) => {
            a.upgraded_us = Some(20);
            a.outcome = Outcome::Rejected;
            a.cause = Some(Cause::ServerClose(code));
        }
        End::Failed(how) => {
            a.outcome = match how {
                Cause2::Http404 => Outcome::Rejected,
                Cause2::Ports => Outcome::ClientError,
                _ => Outcome::Failed,
            };
            a.cause = Some(match how {
                Cause2::Refused => Cause::Connect("refused".into()),
                Cause2::Reset => Cause::Reset,
                Cause2::Timeout => Cause::Timeout("upgrade"),
                Cause2::Http404 => Cause::Http(404),
                Cause2::Ports => Cause::ClientPortsExhausted,
                Cause2::Login => Cause::LoginFailed,
            });
        }
        End::Aborted => {
            a.outcome = Outcome::Aborted;
            a.cause = Some(Cause::Interrupted);
        }
        End::CutWaiting => {
            a.outcome = Outcome::Cut;
            a.cause = Some(Cause::Interrupted);
        }
    }
    a
}

/// An attempt that got its 101 and was never accepted, ended by `cause`.
fn unaccepted(cause: Option<Cause>) -> Attempt {
    let mut a = Attempt::new(10);
    a.upgraded_us = Some(20);
    a.outcome = Outcome::Failed;
    a.cause = cause;
    a
}

/// Connection `c`'s report: one attempt, these counters.
fn report(c: &crate::model::ConnPlan, a: Attempt, counters: crate::model::Counters) -> ConnReport {
    ConnReport {
        counters,
        ..ConnReport::of_attempts(c.id, c.token, vec![a])
    }
}

struct Row {
    name: &'static str,
    /// How connections 0..4 ended (0, 1 valid tokens; 2, 3 forged).
    ends: [End; 4],
    violations: u64,
    stopped: StopReason,
    shared_unexercised: bool,
    verdict: Verdict,
    hint_has: &'static str,
}

fn judge_row(row: &Row) -> Judgement {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .zip(row.ends)
        .map(|(c, end)| report(c, attempt(end), Default::default()))
        .collect();
    let mut by_oracle = BTreeMap::new();
    if row.violations > 0 {
        by_oracle.insert(OracleKind::Liveness, row.violations);
    }
    let coverage = if row.shared_unexercised {
        Coverage {
            shared_tokens: 3,
            overlapping_tokens: 0,
            witnessable_tokens: 0,
            shed_tokens: 0,
        }
    } else {
        Coverage::default()
    };
    judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan: &plan,
        reports: &reports,
        by_oracle: &by_oracle,
        coverage: &coverage,
        stopped: row.stopped,
        stalls: &ClientStalls::default(),
        kept: &[],
        redactor: &Redactor::default(),
        target: TARGET,
    })
}

/// A closed port (every TCP connect refused) is told as what it is, naming where it was
/// dialled: nothing listens there, so whether the server speaks WebSocket is no question
/// yet. Once TCP connected and the server answered other than 101 (an HTTP server at that
/// path), that is the advice; a connect that found no route names the host and network.
#[test]
fn a_closed_port_is_told_apart_from_a_server_that_answers_no_upgrade() {
    let hint = |ends: [End; 4]| {
        let j = judge_row(&Row {
            name: "",
            ends,
            violations: 0,
            stopped: StopReason::Completed,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "",
        });
        assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let closed = hint([End::Failed(Cause2::Refused); 4]);
    assert!(
        closed.contains(
            "(connect_refused ×4): nothing accepted the TCP connection at 127.0.0.1:9: check \
             the URL's port and that the server is running"
        ) && !closed.contains("speaks WebSocket"),
        "{closed}"
    );
    // An HTTP server answered at a ws:// URL: its path is what to check, not TLS.
    let http = hint([End::Failed(Cause2::Http404); 4]);
    assert!(
        http.contains("nothing at that path takes a WebSocket upgrade: check the URL's path")
            && !http.contains("TCP")
            && !http.contains("TLS"),
        "{http}"
    );
    // Half refused, half answered: something listened, and answered no upgrade.
    let mixed = hint([
        End::Failed(Cause2::Refused),
        End::Failed(Cause2::Http404),
        End::Failed(Cause2::Refused),
        End::Failed(Cause2::Http404),
    ]);
    assert!(
        mixed.contains("speaks WebSocket there") && !mixed.contains("--ca-file"),
        "{mixed}"
    );
    let moved = hint([End::Refused(301); 4]);
    assert!(moved.contains("stampede follows no redirect"), "{moved}");
    let plan = plan();
    let unrouted: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            let mut a = attempt(End::Failed(Cause2::Refused));
            a.cause = Some(Cause::Connect("host_unreachable".into()));
            report(c, a, Default::default())
        })
        .collect();
    let j = judge_completed(&plan, &unrouted);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("no TCP connection to 127.0.0.1:9 was made: check the URL's host and port")
            && !hint.contains("speaks WebSocket"),
        "{hint}"
    );
}

#[test]
fn every_verdict_kind() {
    use End::*;
    let done = StopReason::Completed;
    let rows = [
        Row {
            name: "all accepted, forged refused cleanly",
            ends: [Accepted, Accepted, Refused(401), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Clean,
            hint_has: "",
        },
        Row {
            name: "closed port",
            ends: [Failed(Cause2::Refused); 4],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "connect_refused ×4",
        },
        Row {
            name: "plain HTTP server: 404 is no auth refusal",
            ends: [Failed(Cause2::Http404); 4],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "http_404",
        },
        Row {
            name: "silence and resets: unusable even with violations",
            ends: [
                Failed(Cause2::Timeout),
                Failed(Cause2::Reset),
                Failed(Cause2::Timeout),
                Failed(Cause2::Timeout),
            ],
            violations: 2,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "timeout_upgrade ×3",
        },
        Row {
            name: "wrong secret: every token refused with 401",
            ends: [Refused(401); 4],
            violations: 2,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "http_401 ×2",
        },
        Row {
            name: "the oversized token refused by the HTTP layer (431) beside a 401: clean",
            ends: [Accepted, Accepted, Refused(431), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Clean,
            hint_has: "",
        },
        Row {
            name: "wrong secret, the oversized token refused with a 431 all the same: auth",
            ends: [Refused(401), Refused(401), Refused(431), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "http_401 ×2",
        },
        Row {
            name: "in-band auth refused with close 1008 after the upgrade",
            ends: [RefusedAfterUpgrade(1008); 4],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "server_close_1008",
        },
        Row {
            name: "valid refused, a forged token's reset beside, nothing through: auth (the \
                   forged token is rejection hygiene's, not a sign of a wrong URL)",
            ends: [
                Refused(401),
                Refused(401),
                Failed(Cause2::Reset),
                Refused(401),
            ],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "http_401 ×2",
        },
        Row {
            name: "valid refused and a valid token reset, nothing through: unusable",
            ends: [
                Refused(401),
                Failed(Cause2::Reset),
                Failed(Cause2::Reset),
                Refused(401),
            ],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "(http_401 ×2, reset ×2)",
        },
        Row {
            name: "valid refused after the upgrade, a forged token's reset beside: still \
                   auth (it once read clean, every valid token refused)",
            ends: [
                RefusedAfterUpgrade(1008),
                RefusedAfterUpgrade(1008),
                Failed(Cause2::Reset),
                Refused(401),
            ],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "server_close_1008 ×2",
        },
        Row {
            name: "a subprotocol refused after every upgrade: unusable even with violations",
            ends: [RefusedAfterUpgrade(4406); 4],
            violations: 4,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::TargetUnusable,
            hint_has: "accepted none (server_close_4406 ×4)",
        },
        Row {
            name: "an auth close after every upgrade may be the server's policy: judged as usual",
            ends: [RefusedAfterUpgrade(4401); 4],
            violations: 4,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Violations,
            hint_has: "liveness 4",
        },
        Row {
            name: "valid tokens refused with 409 (session held): a finding, not auth",
            ends: [Refused(409), Refused(409), Refused(401), Refused(401)],
            violations: 2,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Violations,
            hint_has: "liveness 2",
        },
        Row {
            name: "valid tokens served, forged ones shed: the bad tokens were never judged",
            ends: [Accepted, Accepted, Refused(429), RefusedAfterUpgrade(1013)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Inconclusive,
            hint_has: "the server shed 2 of the 2 bad-token attempts under load \
                       (http_429 ×1, server_close_1013 ×1): the bad tokens were never judged \
                       (it refused or accepted only 0 of them)",
        },
        Row {
            name: "forged tokens shed no more than refused: judged, the shed note counts them",
            ends: [Accepted, Accepted, Refused(429), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Clean,
            hint_has: "the server shed 1 of 4 attempts under load (http_429 ×1)",
        },
        Row {
            name: "only forged tokens, all refused: the server works",
            ends: [Aborted, Aborted, Refused(401), Refused(403)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::Clean,
            hint_has: "",
        },
        Row {
            name: "every login failed: the token source, not the WebSocket URL",
            ends: [
                Failed(Cause2::Login),
                Failed(Cause2::Login),
                Refused(401),
                Refused(401),
            ],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::AuthMisconfigured,
            hint_has: "every login failed before the upgrade was tried (login_failed ×2",
        },
        Row {
            name: "ports exhausted on our side",
            ends: [Failed(Cause2::Ports); 4],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::ClientLimited,
            hint_has: "ulimit",
        },
        Row {
            // Part of the planned load never ran: no clean pass for a CI job.
            name: "one connection stopped by our own limit, the rest clean",
            ends: [Accepted, Failed(Cause2::Ports), Refused(401), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: false,
            verdict: Verdict::ClientLimited,
            hint_has: "1 of 4 connections never reached the server, stopped by this client's \
                       own limit (client_ports_exhausted ×1)",
        },
        Row {
            name: "violations",
            ends: [Accepted, Accepted, Refused(401), Accepted],
            violations: 3,
            stopped: StopReason::Duration,
            shared_unexercised: true,
            verdict: Verdict::Violations,
            hint_has: "liveness 3",
        },
        Row {
            name: "cut by the duration",
            ends: [Accepted, Aborted, Refused(401), Refused(401)],
            violations: 0,
            stopped: StopReason::Duration,
            shared_unexercised: true,
            verdict: Verdict::Incomplete,
            hint_has: "duration",
        },
        Row {
            name: "every upgrade cut unanswered by the duration",
            ends: [CutWaiting, CutWaiting, CutWaiting, CutWaiting],
            violations: 0,
            stopped: StopReason::Duration,
            shared_unexercised: false,
            verdict: Verdict::Incomplete,
            hint_has: "answered no WebSocket upgrade within the run",
        },
        Row {
            name: "some upgrades answered, the rest cut: the duration's hint",
            ends: [Accepted, CutWaiting, CutWaiting, CutWaiting],
            violations: 0,
            stopped: StopReason::Duration,
            shared_unexercised: false,
            verdict: Verdict::Incomplete,
            hint_has: "raise `duration` or shorten the plan",
        },
        Row {
            name: "interrupted",
            ends: [Accepted, Accepted, Refused(401), Refused(401)],
            violations: 0,
            stopped: StopReason::Interrupted,
            shared_unexercised: false,
            verdict: Verdict::Incomplete,
            hint_has: "interrupted",
        },
        Row {
            name: "shared tokens never overlapped",
            ends: [Accepted, Accepted, Refused(401), Refused(401)],
            violations: 0,
            stopped: done,
            shared_unexercised: true,
            verdict: Verdict::Inconclusive,
            hint_has: "never exercised",
        },
    ];
    for row in &rows {
        let j = judge_row(row);
        assert_eq!(j.verdict, row.verdict, "{}", row.name);
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains(row.hint_has),
            "{}: hint {hint:?} lacks {:?}",
            row.name,
            row.hint_has
        );
    }
}

#[test]
fn only_verdicts_that_exercised_the_target_count() {
    for v in [
        Verdict::TargetUnusable,
        Verdict::AuthMisconfigured,
        Verdict::ClientLimited,
        Verdict::Unreadable,
    ] {
        assert!(!v.exercised(), "{v}");
    }
    for v in [
        Verdict::Clean,
        Verdict::Violations,
        Verdict::Inconclusive,
        Verdict::Incomplete,
    ] {
        assert!(v.exercised(), "{v}");
    }
}

/// Every connection accepted, each having received `(json, kindless, text, binary)`
/// records (`kindless` of the `json` had no kind), with `violations` by oracle.
fn judge_reading(read: (u64, u64, u64, u64), violations: &[(OracleKind, u64)]) -> Judgement {
    judge_counted(&reading(read), violations)
}

/// Counters of a connection that received `(json, kindless, text, binary)` records.
fn reading((json, kindless, text, binary): (u64, u64, u64, u64)) -> crate::model::Counters {
    crate::model::Counters {
        json_records: json,
        kindless_records: kindless,
        non_json: text,
        binary_frames: binary,
        ..Default::default()
    }
}

/// Every connection accepted, each with `counters`, with `violations` by oracle.
fn judge_counted(counters: &crate::model::Counters, violations: &[(OracleKind, u64)]) -> Judgement {
    judge_counted_in(&plan(), counters, violations)
}

/// [`judge_counted`] for the connections of `plan`.
fn judge_counted_in(
    plan: &Plan,
    counters: &crate::model::Counters,
    violations: &[(OracleKind, u64)],
) -> Judgement {
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), counters.clone()))
        .collect();
    judge_completed_by(plan, &reports, &violations.iter().copied().collect())
}

/// A scenario that cannot read what the server sends (SignalR's records without their
/// separator, a binary protocol, kinds in a field other than `type_field`) leaves every
/// expectation unmet: that is a mismatch to fix in the scenario, never violations charged
/// to the server. Any record of a kind, or a violation of another oracle, and the run is
/// judged as usual.
#[test]
fn unmet_expectations_over_records_none_could_read_are_unreadable_not_violations() {
    let unmet = [(OracleKind::Completeness, 4)];
    let text_only = judge_reading((0, 0, 3, 0), &unmet);
    assert_eq!(text_only.verdict, Verdict::Unreadable);
    let hint = text_only.hint.unwrap_or_default();
    assert!(hint.contains("12 non-JSON text records"), "{hint}");
    assert!(hint.contains("4 expectations went unmet"), "{hint}");
    assert!(hint.contains("record_separator"), "{hint}");
    assert!(hint.contains("NDJSON, need \"\\n\""), "{hint}");
    assert!(!hint.contains("type_field"), "{hint}");

    let binary_only = judge_reading((0, 0, 0, 1), &unmet);
    assert_eq!(binary_only.verdict, Verdict::Unreadable);
    let hint = binary_only.hint.unwrap_or_default();
    assert!(hint.contains("4 binary frames"), "{hint}");

    // JSON, but the kind is in another field than the scenario reads.
    let kindless = judge_reading((2, 2, 0, 0), &unmet);
    assert_eq!(kindless.verdict, Verdict::Unreadable);
    let hint = kindless.hint.unwrap_or_default();
    assert!(hint.contains("8 JSON records without a kind"), "{hint}");
    assert!(hint.contains("type_field (now \"type\")"), "{hint}");
    assert!(!hint.contains("record_separator"), "{hint}");
    // Positional arrays, one of whose elements held a kind the script expects: the hint
    // names the pointer that reads it there.
    let mut positional = reading((2, 2, 0, 0));
    positional.expect.positional_kind = Some(Box::new((3, "phx_reply".into())));
    let hint = judge_counted(&positional, &unmet).hint.unwrap_or_default();
    assert!(
        hint.contains(
            "they are positional JSON arrays, and element 3 held \"phx_reply\", a kind the \
             script expects: [oracles] type_field = \"/3\""
        ),
        "{hint}"
    );
    // The same, where the scripts send JSON objects: another version of the protocol.
    let sending = |steps: &str| {
        let text = format!("name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = [{steps}]\n");
        crate::plan::build(&crate::scenario::load_str(&text, "v.toml").unwrap(), 1)
    };
    let objects = sending(r#"{ send = { event = "phx_join" } }, { close = 1000 }"#);
    let hint = judge_counted_in(&objects, &positional, &unmet)
        .hint
        .unwrap_or_default();
    assert!(
        hint.contains(
            "check the protocol's version: the records are positional JSON arrays (element 3 \
             held \"phx_reply\", a kind the script expects), where the scenario sends JSON \
             objects"
        ) && hint.contains("`vsn=1.0.0` in the URL is the object form"),
        "{hint}"
    );
    let arrays = sending(r#"{ send = ["1", "1", "room", "phx_join", {}] }, { close = 1000 }"#);
    let hint = judge_counted_in(&arrays, &positional, &unmet)
        .hint
        .unwrap_or_default();
    assert!(
        hint.contains("type_field = \"/3\" (a JSON Pointer)") && !hint.contains("version"),
        "{hint}"
    );

    // Some records had a kind: the unmet expectations are the server's.
    for read in [(1, 0, 3, 0), (2, 1, 0, 0)] {
        assert_eq!(judge_reading(read, &unmet).verdict, Verdict::Violations);
    }
    // Another oracle broke: a finding whatever the records say.
    let also = [(OracleKind::Completeness, 4), (OracleKind::Exclusivity, 1)];
    assert_eq!(
        judge_reading((0, 0, 3, 0), &also).verdict,
        Verdict::Violations
    );
    // Nothing was asked of the answers, and none could be read: nothing the server sent
    // was checked, which is no clean run (it once was: a Socket.IO server, every frame
    // prefixed, passed clean with a race in it). One record of a kind, and it is clean.
    let unasked = judge_reading((0, 0, 3, 0), &[]);
    assert_eq!(unasked.verdict, Verdict::Unreadable);
    let hint = unasked.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "(12 non-JSON text records) but not one record had a kind the scenario \
             reads, so nothing the server sent was checked: check [oracles] record_separator"
        ),
        "{hint}"
    );
    assert_eq!(judge_reading((1, 0, 3, 0), &[]).verdict, Verdict::Clean);
    // The start of the first record that was not JSON is quoted.
    let mut prefixed = reading((0, 0, 3, 0));
    prefixed.expect.unread_sample = Some(r#"42["notification",{"n":1}]"#.into());
    let hint = judge_counted(&prefixed, &[]).hint.unwrap_or_default();
    assert!(
        hint.contains(
            r#"(12 non-JSON text records, the first began `42["notification",{"n":1}]`)"#
        ) && hint.contains("need [oracles] framing = \"socket.io\"")
            && hint.contains("framing = \"stomp\""),
        "{hint}"
    );
    // Nothing arrived at all, on any connection: no race either (a step the script lacks;
    // a server that never speaks is no pass: unreadable, exit 9, see the test below).
    assert_eq!(
        judge_reading((0, 0, 0, 0), &unmet).verdict,
        Verdict::Unreadable
    );
}

/// `[oracles] accepted` waits for a kind, no connection got it, and the server answered
/// with records none of which the scenario can read (binary frames, JSON arrays without
/// `batched`): unreadable (exit 9), naming the rule, never a target that turned the client
/// away (once: target unusable, "check the subprotocol"). Readable records of other kinds
/// leave it to the rules that judge a welcome of another kind.
#[test]
fn no_welcome_among_records_none_could_read_is_unreadable_not_unusable() {
    let mut plan = plan();
    plan.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "welcome".into(),
    };
    let judged = |read: (u64, u64, u64, u64)| {
        let counters = reading(read);
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut a = attempt(End::Accepted);
                a.accepted_us = None;
                a.outcome = Outcome::Failed;
                report(c, a, counters.clone())
            })
            .collect();
        judge_run(&plan, &reports, &[])
    };
    let binary = judged((0, 0, 0, 7));
    assert_eq!(binary.verdict, Verdict::Unreadable, "{:?}", binary.hint);
    let hint = binary.hint.unwrap_or_default();
    assert!(
        hint.contains("28 binary frames")
            && hint.contains(
                "no connection was accepted by `[oracles] accepted = { message = \"welcome\" }`"
            ),
        "{hint}"
    );
    let arrays = judged((4, 4, 0, 0));
    assert_eq!(arrays.verdict, Verdict::Unreadable, "{:?}", arrays.hint);
    assert!(arrays.hint.unwrap_or_default().contains("batched = true"));
    // Records of a kind, none the welcome: not this rule's to judge.
    assert_ne!(judged((4, 0, 0, 0)).verdict, Verdict::Unreadable);
}

/// A reconnect the server greets with another kind than `[oracles] accepted` waits for
/// (`session_resumed`, not `hello`), every expectation met: the server answered, so the
/// run is judged as usual (clean), and a note says the attempts were not counted as
/// accepted and how to accept both kinds. It once read as inconclusive: "got no answer
/// from the server". The same attempts without a frame from the server are unanswered.
#[test]
fn attempts_closed_before_another_kind_of_welcome_are_answered_not_unserved() {
    let mut plan = plan();
    plan.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "hello".into(),
    };
    let judged = |spoke: bool, said: Option<&str>| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut r = report(c, attempt(End::Accepted), Default::default());
                let mut again = Attempt::new(100);
                again.upgraded_us = Some(110);
                again.outcome = Outcome::Failed;
                again.cause = Some(Cause::ClientClose(1000));
                again.last_frame_us = spoke.then_some(120);
                r.attempts.push(again);
                r.answer = said.map(|text| {
                    crate::model::Answer::new(
                        Cause::ClientClose(1000),
                        "closed by the client".into(),
                        text.as_bytes(),
                    )
                });
                r
            })
            .collect();
        judge_run(&plan, &reports, &[])
    };
    let spoke = judged(true, None);
    assert_eq!(spoke.verdict, Verdict::Clean, "{:?}", spoke.hint);
    let hint = spoke.hint.unwrap_or_default();
    assert!(
        hint.contains("the scripts closed 2 valid-token attempts before the server sent \"hello\"")
            && hint.contains("matches = \"^(hello|OTHER)$\""),
        "{hint}"
    );
    // The kind the server greeted with, when its last message reads whole.
    let resumed = judged(true, Some(r#"{"type":"session_resumed","session":"s1"}"#));
    let hint = resumed.hint.unwrap_or_default();
    assert!(
        hint.contains("`welcome = { type = { matches = \"^(hello|session_resumed)$\" } }`"),
        "{hint}"
    );
    let silent = judged(false, None);
    assert_eq!(silent.verdict, Verdict::Inconclusive, "{:?}", silent.hint);
}

/// The plan of one group of four users, each with its own valid token, running `steps`.
fn valid_plan(steps: &str) -> Plan {
    let text = format!(
        "name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\nsteps = {steps}\n"
    );
    let scenario = crate::scenario::load_str(&text, "v.toml").expect("the scenario loads");
    crate::plan::build(&scenario, 1)
}

/// A script that expects nothing, against a server that never answers (a protocol whose
/// handshake the script does not complete): nothing broke, but nothing was exercised past
/// the handshakes either, so inconclusive, saying that nothing came back. With forged
/// tokens among its connections the handshakes judged their refusals: clean, with the
/// same note. An answer, or an expectation, and a clean run needs no such note: it says
/// what it judged.
#[test]
fn a_run_that_got_nothing_back_is_inconclusive_unless_its_handshakes_judged_something() {
    let counted_in = |plan: &Plan, sent, received, expectations| {
        let mut counters = crate::model::Counters {
            messages_sent: sent,
            messages_received: received,
            ..Default::default()
        };
        counters.expect.expectations = expectations;
        judge_counted_in(plan, &counters, &[])
    };
    let counted = |sent, received, expectations| counted_in(&plan(), sent, received, expectations);
    let silent = counted_in(&valid_plan("[{ close = 1000 }]"), 2, 0, 0);
    assert_eq!(silent.verdict, Verdict::Inconclusive, "{silent:?}");
    let hint = silent.hint.unwrap_or_default();
    assert!(
        hint.contains("sent nothing back (8 messages sent, 0 received)"),
        "{hint}"
    );
    let judged_forged = counted(2, 0, 0);
    assert_eq!(judged_forged.verdict, Verdict::Clean);
    let hint = judged_forged.hint.unwrap_or_default();
    assert!(
        hint.contains("sent nothing back (8 messages sent, 0 received)"),
        "{hint}"
    );
    assert!(hint.contains("session oracles"), "{hint}");
    for (sent, received, expectations) in [(2, 1, 0), (0, 0, 0), (2, 0, 1)] {
        let j = counted(sent, received, expectations);
        let hint = j.hint.unwrap_or_default();
        assert_eq!(j.verdict, Verdict::Clean, "{hint}");
        assert!(
            !hint.contains("sent nothing back") && hint.contains("no expectation met"),
            "{sent} sent, {received} received, {expectations} expected: {hint}"
        );
    }
    let mut met = crate::model::Counters {
        messages_sent: 2,
        messages_received: 2,
        ..Default::default()
    };
    met.expect.expectations = 2;
    met.expect.expectations_met = 2;
    let hint = judge_counted(&met, &[]).hint.unwrap_or_default();
    assert!(hint.starts_with("every expectation met (8 on "), "{hint}");
}

/// A send no `expect` follows after which nothing at all came, on every connection that
/// made it or on some, is what a server that drops it shows (rails/rails #25381): never
/// clean, inconclusive naming the step and what to add. When every such connection
/// received more after it, the run is clean and says what went unjudged.
#[test]
fn nothing_after_a_send_no_expect_follows_is_inconclusive() {
    let plan = valid_plan(
        "[{ send = { type = \"hello\" } }, { expect = \"welcome\" }, \
         { send = { type = \"speak\" } }, { close = 1000 }]",
    );
    let reports_of = |silent_each: &[bool]| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .zip(silent_each.iter().cycle())
            .map(|(c, silent)| {
                let mut counters = crate::model::Counters {
                    messages_sent: 2,
                    messages_received: 2 - u64::from(*silent),
                    unjudged_senders: 1,
                    unjudged_unanswered: u64::from(*silent),
                    after_unjudged_frames: u64::from(!*silent),
                    ..Default::default()
                };
                counters.expect.expectations = 1;
                counters.expect.expectations_met = 1;
                report(c, attempt(End::Accepted), counters)
            })
            .collect()
    };
    let after = |silent_each: &[bool]| {
        judge_completed_by(&plan, &reports_of(silent_each), &BTreeMap::new())
    };
    // A race the handshakes judged elsewhere (shared tokens that collided) judges nothing
    // of that send: still inconclusive.
    let collided = Coverage {
        shared_tokens: 2,
        overlapping_tokens: 2,
        witnessable_tokens: 2,
        shed_tokens: 0,
    };
    let covered = judge_covered(&plan, &reports_of(&[true]), &collided);
    assert_eq!(covered.verdict, Verdict::Inconclusive, "{covered:?}");
    let dropped = after(&[true]);
    assert_eq!(dropped.verdict, Verdict::Inconclusive, "{dropped:?}");
    let hint = dropped.hint.unwrap_or_default();
    assert!(
        hint.starts_with(
            "after the send at `g` step 3, which no `expect` follows, nothing more came on \
             any of the 4 connections that made it"
        ) && hint.contains("`expect_none`")
            && hint.contains("was met: 4 expectations"),
        "{hint}"
    );
    let some = after(&[true, false]);
    assert_eq!(some.verdict, Verdict::Inconclusive, "{some:?}");
    let hint = some.hint.unwrap_or_default();
    assert!(
        hint.contains("nothing more came on 2 of the 4 connections that made it (the others received 2 frames)"),
        "{hint}"
    );
    let answered = after(&[false]);
    assert_eq!(answered.verdict, Verdict::Clean, "{answered:?}");
    let hint = answered.hint.unwrap_or_default();
    assert!(
        hint.contains("is not judged") && hint.contains("every one of the 4 connections"),
        "{hint}"
    );
}

/// A clean run with exclusivity on in which no two connections presented one token says
/// the token race had nothing to judge; one whose shared tokens collided does not, nor
/// does one with exclusivity off.
#[test]
fn a_clean_run_says_when_no_token_was_shared() {
    let plan = valid_plan("[{ close = 1000 }]");
    assert!(
        plan.oracles.session.max_live.is_some(),
        "exclusivity is on by default"
    );
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), Default::default()))
        .collect();
    let judged = |plan: &Plan, coverage: Coverage| judge_covered(plan, &reports, &coverage);
    let unshared = judged(&plan, Coverage::default());
    assert_eq!(unshared.verdict, Verdict::Clean, "{unshared:?}");
    let hint = unshared.hint.unwrap_or_default();
    assert!(
        hint.contains("exclusivity not exercised: no two connections shared a token"),
        "{hint}"
    );
    let collided = Coverage {
        shared_tokens: 2,
        overlapping_tokens: 2,
        witnessable_tokens: 2,
        shed_tokens: 0,
    };
    let shared = judged(&plan, collided);
    assert_eq!(shared.verdict, Verdict::Clean, "{shared:?}");
    assert!(!shared.hint.unwrap_or_default().contains("exclusivity"));
    let mut off = plan.clone();
    off.oracles.session.max_live = None;
    let hint = judged(&off, Coverage::default()).hint.unwrap_or_default();
    assert!(!hint.contains("exclusivity"), "{hint}");
}

/// A clean run whose calibration saw a counter break on some of its connections (not
/// learned, so not judged) says so, and how to judge it.
#[test]
fn a_clean_run_names_a_counter_calibration_saw_break() {
    let mut plan = plan();
    plan.oracles.learned.sequence_broken = vec![("sequence_num".into(), 2, 3)];
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), Default::default()))
        .collect();
    let j = judge_run(&plan, &reports, &[]);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("calibration saw sequence_num go up by one on 2 of 3 connections")
            && hint.contains("declare [oracles] sequence = { field = \"sequence_num\" }"),
        "{hint}"
    );
}

/// A server that sends nothing after the upgrade, on any connection: the unmet
/// expectations are a step the script lacks (a handshake, a subscribe), not a race. One
/// answer anywhere, or another oracle's violation, and the run is judged as usual.
#[test]
fn unmet_expectations_against_a_server_that_said_nothing_are_unreadable() {
    let silent = judge_reading((0, 0, 0, 0), &[(OracleKind::Completeness, 4)]);
    assert_eq!(silent.verdict, Verdict::Unreadable);
    let hint = silent.hint.unwrap_or_default();
    assert!(hint.contains("sent nothing after the upgrade"), "{hint}");
    assert!(hint.contains("closed none"), "{hint}");
    assert!(hint.contains("4 expectations went unmet"), "{hint}");
    let spoke = judge_reading((1, 0, 0, 0), &[(OracleKind::Completeness, 4)]);
    assert_eq!(spoke.verdict, Verdict::Violations);
    let other = judge_reading(
        (0, 0, 0, 0),
        &[(OracleKind::Completeness, 4), (OracleKind::Exclusivity, 1)],
    );
    assert_eq!(other.verdict, Verdict::Violations);
}

/// [`accepted_reports`], each attempt then closed by the server with `close`.
fn closed_with(
    plan: &Plan,
    close: u16,
    fill: impl Fn(usize, &mut crate::model::ExpectCounts),
) -> Vec<ConnReport> {
    let mut reports = accepted_reports(plan, fill);
    for a in reports.iter_mut().flat_map(|r| &mut r.attempts) {
        a.cause = Some(Cause::ServerClose(close));
    }
    reports
}

/// The server answered every expectation with its error event: never clean. Each
/// connection: accepted, `errored` of its expectations errored and `met` met, then closed
/// with `close` (a server close code).
#[test]
fn a_target_that_answers_every_expectation_with_an_error_is_never_clean() {
    let plan = plan();
    let judge_with = |errored: [u64; 4], met: [u64; 4], close: u16| {
        let reports = closed_with(&plan, close, |i, e| {
            e.expectations = errored[i] + met[i];
            e.expectations_errored = errored[i];
            e.expectations_met = met[i];
        });
        judge_run(&plan, &reports, &[])
    };
    // Connections 0 and 1 hold the valid tokens; 2 and 3 forged ones.
    let auth = judge_with([1, 1, 1, 1], [0; 4], 1008);
    assert_eq!(auth.verdict, Verdict::AuthMisconfigured, "{auth:?}");
    let hint = auth.hint.unwrap_or_default();
    assert!(
        hint.contains("answered every request with its error event (2 errored, none met)")
            && hint.contains("server_close_1008"),
        "{hint}"
    );
    let other = judge_with([1, 1, 0, 0], [0; 4], 4001);
    assert_eq!(other.verdict, Verdict::TargetUnusable, "{other:?}");
    assert!(other
        .hint
        .unwrap_or_default()
        .contains("nothing the script is for was exercised"));
    // One valid connection met its expectation: judged as ever.
    let some_met = judge_with([1, 0, 0, 0], [0, 1, 0, 0], 4001);
    assert_eq!(some_met.verdict, Verdict::Clean, "{some_met:?}");
    // Only the forged tokens got errors: their right answer.
    let forged_only = judge_with([0, 0, 1, 1], [0; 4], 1008);
    assert_eq!(forged_only.verdict, Verdict::Clean, "{forged_only:?}");
}

/// Every refused request went out before the server had accepted its connection in band
/// (a script that sends before the ack, on purpose): the server may refuse a request that
/// comes too early (allowed, no drop) or refuse this request whenever it comes. Not
/// target unusable, not clean: inconclusive, saying how to tell. One refused request sent
/// after acceptance makes it unusable again, as does an auth code closing them all.
#[test]
fn requests_all_refused_before_acceptance_are_inconclusive_not_unusable() {
    let plan = plan();
    // Connections 0 and 1 hold the valid tokens; 2 and 3 forged ones (no errors).
    let judge_with = |early: [u64; 2], close: u16| {
        let reports = closed_with(&plan, close, |i, e| {
            e.expectations = 1;
            e.expectations_errored = u64::from(i < 2);
            e.expectations_errored_early = early.get(i).copied().unwrap_or(0);
        });
        judge_run(&plan, &reports, &[])
    };
    let early = judge_with([1, 1], 1000);
    assert_eq!(early.verdict, Verdict::Inconclusive, "{early:?}");
    let hint = early.hint.unwrap_or_default();
    assert!(
        hint.contains("every one a request sent before the server had accepted its connection")
            && hint.contains("send one after the ack too"),
        "{hint}"
    );
    // Said once: the note on errors is not added after it.
    assert_eq!(hint.matches("with its error event").count(), 1, "{hint}");
    let one_late = judge_with([1, 0], 1000);
    assert_eq!(one_late.verdict, Verdict::TargetUnusable, "{one_late:?}");
    // Early before an acceptance that never came is no early refusal: the rule itself
    // (other rules judge a server that accepted none first) says unusable.
    let mut never_accepted = closed_with(&plan, 1000, |i, e| {
        e.expectations = 1;
        e.expectations_errored = u64::from(i < 2);
        e.expectations_errored_early = u64::from(i < 2);
    });
    for r in &mut never_accepted {
        for a in &mut r.attempts {
            a.outcome = Outcome::Failed;
        }
    }
    let rule = super::misreading::answered_only_errors(&plan, &never_accepted, None);
    assert_eq!(
        rule.map(|j| j.verdict),
        Some(Verdict::TargetUnusable),
        "an acceptance that never came"
    );
    let auth = judge_with([1, 1], 1008);
    assert_eq!(auth.verdict, Verdict::AuthMisconfigured, "{auth:?}");
}

/// A run whose requests were all refused, some before the ack (a "not ready yet") and
/// some after it (the refusal that makes the target unusable): the hint quotes the first
/// error after acceptance, not the early one that only says a request came too soon.
#[test]
fn an_unusable_target_quotes_its_first_error_after_acceptance() {
    let plan = plan();
    let mut reports = closed_with(&plan, 1000, |i, e| {
        e.expectations = 2;
        e.expectations_errored = if i < 2 { 2 } else { 0 };
        e.expectations_errored_early = if i < 2 { 1 } else { 0 };
    });
    for r in reports.iter_mut().take(2) {
        r.first_error = Some(r#"{"type":"error","code":"not_ready"}"#.into());
    }
    reports[1].first_error_accepted = Some(r#"{"type":"error","code":"bad_format"}"#.into());
    let j = judge_run(&plan, &reports, &[]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(r#"the first after acceptance: {"type":"error","code":"bad_format"}"#),
        "{hint}"
    );
}

/// A greeting met (the ack, the script's `expect` before its first send) is no request
/// served: when every request got the error event, the run is unusable, and the hint
/// quotes the first error. A request served on any valid connection, or a scenario that
/// names the error event in an `expect` (an answer it expects), is judged as usual.
#[test]
fn errors_to_every_request_past_a_met_greeting_are_never_clean() {
    let text = |steps: &str| {
        format!(
            "name = \"g\"\nduration = \"1s\"\n[oracles]\naccepted = {{ message = \"ack\" }}\n\
             [[group]]\nname = \"g\"\nusers = 2\nsteps = [{steps}]\n"
        )
    };
    let usual = r#"{ expect = "ack" }, { send = { type = "subscribe" } }, { expect = "next+ complete" }, { expect_none = "error", within = "50ms" }"#;
    let judge_with = |steps: &str, served: [u64; 2]| {
        let scenario = crate::scenario::load_str(&text(steps), "g.toml").unwrap();
        let plan = crate::plan::build(&scenario, 1);
        let mut reports = accepted_reports(&plan, |i, e| {
            e.expectations = 3;
            e.expectations_met = 2 + served[i];
            e.expectations_errored = 1 - served[i];
            e.events.entry("ack".into()).or_default().arrived = 1;
            e.events.entry("next".into()).or_default().arrived = served[i];
            // Keepalives come whether or not a request was served.
            e.events.entry("keepalive".into()).or_default().arrived = 2;
        });
        for (r, served) in reports.iter_mut().zip(served) {
            r.first_error = (served == 0).then(|| {
                r#"{"type":"error","id":"s-1","payload":[{"message":"no such field"}]}"#.into()
            });
        }
        judge_run(&plan, &reports, &[])
    };
    let j = judge_with(usual, [0, 0]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "answered every request with its error event (2 errored, none met past the handshake"
        ) && hint.contains(
            r#"the first: {"type":"error","id":"s-1","payload":[{"message":"no such field"}]}"#
        ),
        "{hint}"
    );
    // Kinds a later step expects (a keepalive, met) answer no request: the first `expect`
    // after the send names what does.
    let keepalives = format!(r#"{usual}, {{ repeat = 2, steps = [{{ expect = "keepalive" }}] }}"#);
    let j = judge_with(&keepalives, [0, 0]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    // Nor one expected first after the send, before the correlated answer.
    let keepalive_first = r#"{ expect = "ack" }, { send = { type = "subscribe", id = "s1" } }, { expect = "keepalive" }, { expect = "next+ complete", correlate = "id" }"#;
    let j = judge_with(keepalive_first, [0, 0]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    // Some requests served, some refused with an error under load: judged as usual, and
    // not said to have met every expectation.
    let j = judge_with(usual, [1, 0]);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "the server answered 1 of 6 expectations with its error event (counted, not violations; the first: {"
        ),
        "errors short of every request are said: {hint}"
    );
    assert!(
        hint.starts_with(
            "5 of 6 expectations met (2 connections accepted; 1 answered with the server's error event) and no oracle broke"
        ),
        "{hint}"
    );
    // The scenario names the error event in an `expect`: an answer it expects.
    let expected = r#"{ expect = "ack" }, { send = { type = "subscribe" } }, { expect = "error" }"#;
    let j = judge_with(expected, [0, 0]);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
}

/// Part of an answer that came after its request's error event served nothing, though
/// the event rates count what came of it: when every request got the error event, the run
/// is unusable as when nothing followed the errors. A whole answer after its error served
/// its request: judged as usual, the note saying the answers came anyway.
#[test]
fn only_a_whole_answer_after_its_error_serves_its_request() {
    let text = "name = \"g\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\n\
                steps = [{ send = { type = \"ask\", id = \"q1\" } }, \
                { expect = \"started done\", correlate = \"id\" }]\n";
    let scenario = crate::scenario::load_str(text, "g.toml").unwrap();
    let plan = crate::plan::build(&scenario, 1);
    let judge_with = |whole: bool| {
        let mut reports = accepted_reports(&plan, |_, e| {
            e.expectations = 1;
            e.expectations_errored = 1;
            e.events.entry("started".into()).or_default().arrived = 1;
            e.events.entry("done".into()).or_default().arrived = u64::from(whole);
        });
        for r in &mut reports {
            r.first_error = Some(r#"{"type":"error","id":"q1"}"#.into());
            r.counters.answered_after_error = u64::from(whole);
            r.counters.arrived_after_error = 1 + u64::from(whole);
        }
        judge_run(&plan, &reports, &[])
    };
    let part = judge_with(false);
    assert_eq!(part.verdict, Verdict::TargetUnusable, "{part:?}");
    let hint = part.hint.unwrap_or_default();
    assert!(
        hint.contains("answered every request with its error event (2 errored, none met"),
        "{hint}"
    );
    let whole = judge_with(true);
    assert_eq!(whole.verdict, Verdict::Clean, "{whole:?}");
    assert!(
        whole
            .hint
            .unwrap_or_default()
            .contains("then sent the whole answer to every one of those requests"),
        "the note says they came anyway"
    );
}

/// One accepted attempt per connection of `plan`, its expectation counters filled by
/// `fill` (the connection's index, its counters).
fn accepted_reports(
    plan: &Plan,
    fill: impl Fn(usize, &mut crate::model::ExpectCounts),
) -> Vec<ConnReport> {
    plan.conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut counters = crate::model::Counters::default();
            fill(i, &mut counters.expect);
            report(c, attempt(End::Accepted), counters)
        })
        .collect()
}

/// How a valid-token connection of [`door_run`] ended: closed by the server with `code`
/// (and `reason`) before acceptance, after sending `sent` messages; or accepted.
#[derive(Clone, Copy)]
enum Door {
    Closed {
        code: u16,
        reason: &'static str,
        sent: u64,
    },
    Accepted,
}

/// Judges a run whose valid-token connections (0 and 1) ended as `valid` says and whose
/// forged ones (2 and 3) were refused with 401, with `violations` completeness violations
/// (the unmet expectations a refusal leaves).
fn door_run(valid: [Door; 2], violations: u64) -> Judgement {
    door_run_on(plan(), valid, violations)
}

/// [`door_run`] of `plan`.
fn door_run_on(plan: Plan, valid: [Door; 2], violations: u64) -> Judgement {
    let reports = door_reports(&plan, valid);
    judge_door(&plan, &reports, violations, &Redactor::default())
}

/// The reports of [`door_run`]: `valid` for connections 0 and 1, the forged ones refused.
fn door_reports(plan: &Plan, valid: [Door; 2]) -> Vec<ConnReport> {
    plan.conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut counters = crate::model::Counters::default();
            let Some(door) = valid.get(i) else {
                return report(c, attempt(End::Refused(401)), counters);
            };
            let Door::Closed { code, reason, sent } = *door else {
                return report(c, attempt(End::Accepted), counters);
            };
            let mut a = unaccepted(Some(Cause::ServerClose(code)));
            a.clean_end = true;
            counters.messages_sent = sent;
            let mut r = report(c, a, counters);
            r.answer = Some(crate::model::Answer::new(
                Cause::ServerClose(code),
                format!("Close {code}"),
                reason.as_bytes(),
            ));
            r
        })
        .collect()
}

/// Judges a run of `reports`, `violations` of them completeness violations, the tokens
/// hidden by `redactor`.
fn judge_door(
    plan: &Plan,
    reports: &[ConnReport],
    violations: u64,
    redactor: &Redactor,
) -> Judgement {
    let mut by_oracle = BTreeMap::new();
    if violations > 0 {
        by_oracle.insert(OracleKind::Completeness, violations);
    }
    judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan,
        reports,
        by_oracle: &by_oracle,
        coverage: &Coverage::default(),
        stopped: StopReason::Completed,
        stalls: &ClientStalls::default(),
        kept: &[],
        redactor,
        target: TARGET,
    })
}

/// The fresh user's server: it closes every valid connection with 4000 and a reason
/// echoing that connection's own token (`bad session <token>`, cut at 120 bytes). The
/// hint quotes the reason once, as shown (the two differ only in their tokens, and
/// neither token is shown), and tells the code seen (4000) from the default it restates
/// (1008): a `close` list written replaces the default, so it must stay.
#[test]
fn a_reason_echoing_each_token_is_quoted_once_and_the_code_seen_is_told_from_the_kept() {
    use crate::auth::tests::{auth_plan, keys};
    let plan = plan();
    let alg = crate::model::JwtAlg::Hs256;
    let tokens = crate::auth::mint_all(&plan.tokens, &auth_plan(alg), &keys(alg)).unwrap();
    let redactor = Redactor::new(&tokens);
    let closed = Door::Closed {
        code: 4000,
        reason: "",
        sent: 0,
    };
    let mut reports = door_reports(&plan, [closed; 2]);
    for r in reports.iter_mut().take(2) {
        let token = tokens[r.token as usize].expose();
        let reason: String = format!("bad session {token}").chars().take(120).collect();
        r.answer = Some(crate::model::Answer::new(
            Cause::ServerClose(4000),
            "Close 4000".to_string(),
            reason.as_bytes(),
        ));
    }
    let j = judge_door(&plan, &reports, 2, &redactor);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert_eq!(hint.matches("bad session").count(), 1, "{hint}");
    assert!(
        hint.contains("server_close_4000 ×2, reason \"bad session <part of a token>\")"),
        "{hint}"
    );
    for token in &tokens[..2] {
        assert!(!hint.contains(&token.expose()[..24]), "{hint}");
    }
    assert!(
        hint.contains(
            "`[oracles] reject = { close = [1008, 4000] }`, where 4000 is the code it closed \
             with and 1008 stays only because a `close` list written replaces the one in force"
        ),
        "{hint}"
    );
}

/// A `close` list the scenario wrote is restated, as the default is, and told apart from
/// the codes seen.
#[test]
fn a_written_close_list_is_restated_and_told_from_the_codes_seen() {
    let text = "name = \"v\"\nduration = \"1s\"\n[oracles]\nreject = { close = [4403, 4409] }\n\
                [[group]]\nname = \"g\"\nusers = 4\nsteps = [{ close = 1000 }]\n";
    let scenario = crate::scenario::load_str(text, "v.toml").unwrap();
    let mut plan = crate::plan::build(&scenario, 1);
    for slot in [2, 3] {
        plan.tokens[slot].forge = Some(Forge::Bad {
            name: crate::model::BadToken::AlgNone,
        });
    }
    let closed = |code| Door::Closed {
        code,
        reason: "",
        sent: 0,
    };
    let hint = door_run_on(plan, [closed(4401), closed(4000)], 0)
        .hint
        .unwrap_or_default();
    assert!(
        hint.contains(
            "`[oracles] reject = { close = [4403, 4409, 4000, 4401] }`, where 4000, 4401 are \
             the codes it closed with and 4403, 4409 stay only because"
        ),
        "{hint}"
    );
}

/// A server that closes every valid token's connection right after the 101 with a code
/// `reject.close` does not list (the default lists 1008 only) ran nothing: never
/// violations, never clean. An auth code or an auth reason says the tokens are wrong; any
/// other close, that nothing was exercised. The hint names what the server said and how
/// to declare it.
#[test]
fn an_undeclared_close_at_the_door_is_no_race_and_no_clean_run() {
    let closed = |code, reason| Door::Closed {
        code,
        reason,
        sent: 0,
    };
    for (code, reason, verdict) in [
        (4401, "", Verdict::AuthMisconfigured),
        (4403, "Forbidden", Verdict::AuthMisconfigured),
        (4001, "invalid token", Verdict::AuthMisconfigured),
        (4000, "Unauthorized", Verdict::AuthMisconfigured),
        (1000, "jwt expired", Verdict::AuthMisconfigured),
        (4000, "", Verdict::TargetUnusable),
        (1000, "", Verdict::TargetUnusable),
        (1011, "internal error", Verdict::TargetUnusable),
    ] {
        for violations in [0, 2] {
            let j = door_run([closed(code, reason); 2], violations);
            assert_eq!(j.verdict, verdict, "{code} {reason:?}: {j:?}");
            let hint = j.hint.unwrap_or_default();
            assert!(
                hint.contains(&format!("server_close_{code} ×2"))
                    && hint.contains(&format!("reject = {{ close = [1008, {code}] }}")),
                "{hint}"
            );
            // The tokens are named by where they came from: valid to us, not to the server.
            assert!(
                hint.contains(
                    "the server closed the connection of every token signed with the \
                     scenario's key before accepting it"
                ) && !hint.contains("every valid token"),
                "{hint}"
            );
            if !reason.is_empty() {
                assert!(hint.contains(&format!("reason {reason:?}")), "{hint}");
            }
        }
    }
    // Going away or restarting at the door: a server shutting down, no refusal to declare.
    for code in [1001, 1012] {
        let j = door_run([closed(code, ""); 2], 0);
        assert_eq!(j.verdict, Verdict::TargetUnusable, "{code}: {j:?}");
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains("as a server shutting down does") && !hint.contains("reject = {"),
            "{hint}"
        );
    }
}

/// A server that requires permessage-deflate (RFC 7692) turns every upgrade away with an
/// answer naming it: unusable, and the hint says which extension, not just "check the
/// URL". A 400 that names none keeps the generic hint.
#[test]
fn an_upgrade_refused_for_want_of_an_extension_says_so() {
    let plan = plan();
    let judged = |body: &[u8]| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut r = report(c, attempt(End::Refused(400)), Default::default());
                r.answer = Some(crate::model::Answer::new(
                    Cause::Http(400),
                    "HTTP/1.1 400 Bad Request".into(),
                    body,
                ));
                r
            })
            .collect();
        judge_run(&plan, &reports, &[])
    };
    let deflate = judged(b"permessage-deflate required");
    assert_eq!(
        deflate.verdict,
        Verdict::TargetUnusable,
        "{:?}",
        deflate.hint
    );
    let hint = deflate.hint.unwrap_or_default();
    assert!(
        hint.contains("named a WebSocket extension") && hint.contains("RFC 7692"),
        "{hint}"
    );
    let plain = judged(b"bad request").hint.unwrap_or_default();
    assert!(
        !plain.contains("extension") && plain.contains("check the URL"),
        "{plain}"
    );
}

/// A close at the door whose reason names the (sub)protocol points at the subprotocols
/// offered, not at declaring the code a token refusal; and a script that already begins
/// by waiting for the server is not told to begin with an `expect`.
#[test]
fn a_close_at_the_door_naming_the_subprotocol_says_to_check_it() {
    let closed = |reason, sent| Door::Closed {
        code: 4406,
        reason,
        sent,
    };
    let j = door_run([closed("Subprotocol not acceptable", 0); 2], 2);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains("subprotocols offered"), "{hint}");
    assert!(!hint.contains("reject = {"), "{hint}");
    // The script sent first: advice to wait for the server, unless it already does.
    let hint = door_run([closed("", 1); 2], 2).hint.unwrap_or_default();
    assert!(hint.contains("begin the script with an `expect`"), "{hint}");
    let mut waits = plan();
    for script in &mut waits.scripts {
        script.insert(0, expect_step("connection_ack"));
    }
    let hint = door_run_on(waits, [closed("", 1); 2], 2)
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("begin the script"), "{hint}");
    assert!(
        hint.contains("each had sent a message of its script"),
        "{hint}"
    );
}

/// A server that accepts every connection and then sheds it (close 1013) before serving
/// anything exercised nothing: unusable, the hint naming the closes it shed with (it said
/// "no answer": the causes it quoted leave accepted attempts out).
#[test]
fn a_run_shed_after_every_acceptance_names_the_closes() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            let mut a = attempt(End::Accepted);
            a.cause = Some(Cause::ServerClose(1013));
            report(c, a, Default::default())
        })
        .collect();
    let j = judge_completed_by(&plan, &reports, &BTreeMap::new());
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.starts_with("the server shed every attempt (server_close_1013 ×4)"),
        "{hint}"
    );
}

/// A close at the door that says the client broke the server's protocol (1002 "expected
/// HANDSHAKE_REQ": a River server closing another protocol's first message) is no token
/// refusal to declare: unusable, pointing at the script's first messages, never offering
/// `reject.close` (which turned the mismatch into an auth misconfiguration).
#[test]
fn a_protocol_close_at_the_door_is_no_refusal_to_declare() {
    let closed = Door::Closed {
        code: 1002,
        reason: "expected HANDSHAKE_REQ",
        sent: 1,
    };
    let j = door_run([closed; 2], 2);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("its word for a client that broke its protocol")
            && hint.contains("check its first messages")
            && !hint.contains("reject = {"),
        "{hint}"
    );
}

/// A server's own rate-limit close at the door (4429, or a reason that says so) is
/// shedding: the hint offers `reject.shed`, never `reject.close` (a refusal of the token).
#[test]
fn a_rate_limit_close_at_the_door_is_declared_as_shedding() {
    for (code, reason) in [(4429, ""), (4000, "Too many requests")] {
        let j = door_run(
            [Door::Closed {
                code,
                reason,
                sent: 0,
            }; 2],
            0,
        );
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains(&format!("reject = {{ shed = [{code}] }}"))
                && !hint.contains("close = ["),
            "{code} {reason:?}: {hint}"
        );
    }
}

/// What stays with the oracles: a connection accepted (the others' closes are the
/// server's business). A close after the script's first message, when not one valid
/// token's connection was accepted, is no race whatever broke: a policy close
/// (graphql-transport-ws closes 4401 on a `subscribe` sent before its ack) cannot be told
/// from a token the server never read (`placement = "header"` for a server that reads
/// `connection_init`), and the hint names the close and where the token travelled.
#[test]
fn a_close_after_the_script_spoke_with_none_accepted_is_no_race() {
    let early = Door::Closed {
        code: 4401,
        reason: "Unauthorized",
        sent: 1,
    };
    for violations in [2, 0] {
        let j = door_run([early; 2], violations);
        assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains("each had sent its first message")
                && hint.contains("server_close_4401 ×2, reason \"Unauthorized\"")
                && hint.contains("the upgrade header Authorization: [auth] placement"),
            "the hint names the close and the placement: {hint}"
        );
    }
    // An acceptance in band the script did not wait for: named, as what to expect first.
    let mut in_band = plan();
    in_band.oracles.session.accepted = AcceptRule::Message {
        event: "connection_ack".into(),
    };
    let hint = door_run_on(in_band, [early; 2], 0).hint.unwrap_or_default();
    assert!(
        hint.contains("before the server's `connection_ack` came")
            && hint.contains("begin the script with `{ expect = \"connection_ack\" }` first"),
        "{hint}"
    );
    let unusable = Door::Closed {
        code: 4400,
        reason: "",
        sent: 1,
    };
    let j = door_run([unusable; 2], 2);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let door = Door::Closed {
        code: 4401,
        reason: "",
        sent: 0,
    };
    let j = door_run([door, Door::Accepted], 1);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let j = door_run([early, Door::Accepted], 1);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// A server that refuses in band, with a message before a Close that says nothing by
/// itself (ActionCable: `{"type":"disconnect","reason":"unauthorized"}`, then 1000), when
/// the scenario does not declare that message: the message says auth, so the tokens are
/// what to check, and the hint spells out the declaration. A message that says nothing of
/// auth leaves the run unusable.
#[test]
fn an_undeclared_refusal_message_that_says_auth_is_auth_misconfigured() {
    let judge_said = |message: &str| {
        let plan = plan();
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut a = unaccepted(Some(Cause::ServerClose(1000)));
                a.clean_end = true;
                let counters = crate::model::Counters {
                    messages_received: 1,
                    ..Default::default()
                };
                let mut r = report(c, a, counters);
                r.answer = Some(crate::model::Answer::new(
                    Cause::ServerClose(1000),
                    "Close 1000".into(),
                    b"",
                ));
                r.said_before_close = Some(message.to_string());
                r
            })
            .collect();
        judge_completed_by(
            &plan,
            &reports,
            &BTreeMap::from([(OracleKind::Completeness, 2)]),
        )
    };
    let cable = r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#;
    let j = judge_said(cable);
    assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(&format!("after the message {cable}"))
            && hint.contains(
                r#"`[oracles.kinds] refused = { type = "disconnect", reason = "unauthorized" }` and `[oracles] reject = { message = "refused" }`"#
            ),
        "{hint}"
    );
    for said in [
        r#"{"event":"phx_error","payload":{"message":"Unauthenticated"}}"#,
        r#"{"type":"error","message":"invalid token"}"#,
        "Forbidden",
    ] {
        let j = judge_said(said);
        assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{said}: {j:?}");
    }
    let j = judge_said(r#"{"type":"bye","reason":"maintenance"}"#);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    assert!(j
        .hint
        .unwrap_or_default()
        .contains("as `reject.message` (its kind in [oracles.kinds])"));
}

/// The same in-band refusal as the first frame, which the default acceptance rule
/// (`first_frame`) takes for acceptance (a SignalR scenario against an ActionCable server):
/// every valid token's connection then closed by the server before meeting anything is
/// still refused at the door, auth misconfigured, and the hint says the rule counted them
/// accepted. A message that says nothing of auth, or one expectation met, and the run is
/// judged as usual; under `accepted = { message }` the rule already said.
#[test]
fn an_in_band_refusal_taken_for_acceptance_is_still_refused_at_the_door() {
    let judge_said = |plan: &Plan, message: &str, met: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut a = attempt(End::Accepted);
                a.cause = Some(Cause::ServerClose(1000));
                let mut counters = crate::model::Counters {
                    messages_received: 1,
                    ..Default::default()
                };
                counters.expect.expectations = 1;
                counters.expect.expectations_met = met;
                let mut r = report(c, a, counters);
                r.said_before_accepted_close = Some(message.to_string());
                r
            })
            .collect();
        judge_completed_by(
            plan,
            &reports,
            &BTreeMap::from([(OracleKind::Completeness, 2)]),
        )
    };
    let plan = plan();
    let cable = r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#;
    let j = judge_said(&plan, cable, 0);
    assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(&format!("after the message {cable}"))
            && hint.contains("2 attempts counted as accepted by `accepted = \"first_frame\"`")
            && hint.contains("reject = { message = \"refused\" }"),
        "{hint}"
    );
    let bye = judge_said(&plan, r#"{"type":"bye","reason":"maintenance"}"#, 0);
    assert_eq!(bye.verdict, Verdict::Violations, "{bye:?}");
    let met = judge_said(&plan, cable, 1);
    assert_eq!(met.verdict, Verdict::Violations, "{met:?}");
    let mut by_message = plan.clone();
    by_message.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "welcome".into(),
    };
    let j = judge_said(&by_message, cable, 0);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// Bad tokens the server refused in band, in words the scenario does not declare
/// (`{"type":"disconnect","reason":"unauthorized"}`, then Close 1000), broke rejection
/// hygiene as the oracle reads them: the server did what it must, so inconclusive with
/// the declaration, never violations. A last message that says nothing of auth stays a
/// violation, and so does a Close whose own code states the refusal (a 4401 the strict
/// policy leaves unlisted, after a greeting `auth_required`): the code is the refusal,
/// not the words before it.
#[test]
fn bad_tokens_refused_in_band_undeclared_are_not_hygiene_violations() {
    let plan = plan();
    let judged_closed = |said: &str, code: u16| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                if super::valid_token(&plan, c.token) {
                    return report(c, attempt(End::Accepted), Default::default());
                }
                let mut a = unaccepted(Some(Cause::ServerClose(code)));
                a.clean_end = true;
                let mut r = report(c, a, Default::default());
                r.said_before_close = Some(said.to_string());
                r
            })
            .collect();
        let kept: Vec<Violation> = reports
            .iter()
            .filter(|r| !super::valid_token(&plan, r.token))
            .map(|r| Violation {
                oracle: OracleKind::RejectionHygiene,
                ..unmet(r.id, false)
            })
            .collect();
        judge_completed_kept(
            &plan,
            &reports,
            &[(OracleKind::RejectionHygiene, kept.len() as u64)].into(),
            &kept,
        )
    };
    let judged = |said: &str| judged_closed(said, 1000);
    let cable = r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#;
    let j = judged(cable);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "every rejection-hygiene violation (2) is a bad token the server refused in band"
        ) && hint.contains(r#"`[oracles] reject = { message = "refused" }`"#),
        "{hint}"
    );
    let bye = judged(r#"{"type":"bye","reason":"maintenance"}"#);
    assert_eq!(bye.verdict, Verdict::Violations, "{bye:?}");
    let greeted = judged_closed(r#"{"type":"auth_required"}"#, 4401);
    assert_eq!(greeted.verdict, Verdict::Violations, "{greeted:?}");
}

/// Collisions that only met shed handshakes leave the run inconclusive with a hint that
/// says shedding took them, and names what is left to do when some collisions remained;
/// a run still exercised elsewhere is judged as usual.
#[test]
fn collisions_shedding_took_are_said_in_the_hint() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), Default::default()))
        .collect();
    let judged = |coverage: Coverage| judge_covered(&plan, &reports, &coverage);
    let all = judged(Coverage {
        shared_tokens: 3,
        shed_tokens: 3,
        ..Coverage::default()
    });
    assert_eq!(all.verdict, Verdict::Inconclusive);
    let hint = all.hint.unwrap_or_default();
    assert!(
        hint.starts_with("shedding ate the race's coverage: on 3 of the 3 shared tokens")
            && hint.contains("none was left to exercise it"),
        "{hint}"
    );
    let unwitnessed = judged(Coverage {
        shared_tokens: 3,
        overlapping_tokens: 1,
        witnessable_tokens: 0,
        shed_tokens: 2,
    });
    assert_eq!(unwitnessed.verdict, Verdict::Inconclusive);
    let hint = unwitnessed.hint.unwrap_or_default();
    assert!(
        hint.contains("on 2 of the 3 shared tokens")
            && hint.contains("the 1 left could not tell")
            && hint.contains("add an exchange"),
        "{hint}"
    );
    let exercised = judged(Coverage {
        shared_tokens: 3,
        overlapping_tokens: 1,
        witnessable_tokens: 1,
        shed_tokens: 2,
    });
    assert_eq!(exercised.verdict, Verdict::Clean, "{:?}", exercised.hint);
}

/// Every valid token refused at the upgrade (HTTP 401) while the scenario carries the token
/// in the first message after it: the secret may be right and the placement wrong, and the
/// hint says so. With the token on the upgrade (the default header), it does not.
#[test]
fn an_upgrade_refused_when_the_token_travels_after_it_names_the_placement() {
    let judged = |placement: Placement, end: End| {
        let mut plan = plan();
        plan.auth.placement = placement;
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| report(c, attempt(end), Default::default()))
            .collect();
        judge_run(&plan, &reports, &[])
    };
    let first_message = Placement::FirstMessage {
        template: serde_json::json!({"type": "auth", "token": "{{token}}"}),
        text: false,
        after: None,
    };
    let j = judged(first_message.clone(), End::Refused(401));
    assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("http_401") && hint.contains("set `[auth] placement`"),
        "{hint}"
    );
    // On the upgrade the usual way: the token is most likely wrong, the placement only
    // named as the other way to be refused (a server that reads it elsewhere).
    let header = plan().auth.placement;
    let hint = judged(header, End::Refused(401)).hint.unwrap_or_default();
    assert!(!hint.contains("travels in the first message"), "{hint}");
    assert!(
        hint.contains("check the signing secret")
            && hint.ends_with(
                "; or, if the server reads the token elsewhere than the upgrade header \
                 Authorization (it then refuses it as missing), set `[auth] placement` to \
                 where it does"
            ),
        "{hint}"
    );
    // Refused in band, after the first message: the placement was read.
    let hint = judged(first_message, End::RefusedAfterUpgrade(1008))
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("set `[auth] placement`"), "{hint}");
}

/// Every valid token refused (HTTP 401) while it travelled in a place many servers do not
/// read (the subprotocol offer, a cookie, a header of another name): the hint names that
/// placement and where else to try, besides the signing material. With the token in the
/// Authorization header or the query, the placement is the usual one: the hint blames
/// the signing material first and names the placement only as the other way a server
/// refuses it (one that reads only `?token=` refuses a header's token as missing).
#[test]
fn every_token_refused_in_an_uncommon_placement_names_it() {
    let hint_for = |placement: Placement| {
        let mut plan = plan();
        plan.auth.placement = placement;
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| report(c, attempt(End::Refused(401)), Default::default()))
            .collect();
        let j = judge_completed(&plan, &reports);
        assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let subprotocol = hint_for(Placement::Subprotocol {
        offer: Vec::new(),
        prefix: String::new(),
    });
    assert!(
        subprotocol.contains("check the signing secret")
            && subprotocol.contains("the tokens travelled in the Sec-WebSocket-Protocol offer")
            && subprotocol.contains("set `[auth] placement` to where it does")
            && subprotocol.contains("the Authorization header, a query parameter"),
        "{subprotocol}"
    );
    let cookie = hint_for(Placement::Cookie {
        name: "session".into(),
    });
    assert!(
        cookie.contains("the tokens travelled in the cookie session"),
        "{cookie}"
    );
    let custom = hint_for(Placement::Header {
        name: "X-Api-Key".into(),
        prefix: String::new(),
    });
    assert!(
        custom.contains("the tokens travelled in the upgrade header X-Api-Key"),
        "{custom}"
    );
    let usual = [
        plan().auth.placement,
        Placement::Query {
            param: "token".into(),
        },
    ];
    for placement in usual {
        let hint = hint_for(placement);
        assert!(!hint.contains("the tokens travelled in"), "{hint}");
        assert!(
            hint.contains("check the signing secret")
                && hint.contains("if the server reads the token elsewhere than the "),
            "{hint}"
        );
    }
}

/// How one connection of [`judge_greeted`] went past its greeting.
#[derive(Clone, Copy, PartialEq)]
enum Past {
    /// The greeting (`ack`) and nothing more.
    Ignored,
    /// The greeting, then the reply its request expects.
    Replied,
    /// The greeting, then a message of a kind no `expect` names.
    OtherKind,
    /// The greeting, then the server's Close 1011.
    Closed,
    /// The greeting, then the server's Close 1002 (protocol error), reason "bad handshake".
    RefusedFormat,
}

/// Two valid connections of a script that waits for `ack`, sends one request and expects
/// its `reply` (`steps` replaces it), each going `past` its greeting, with `violations`
/// by oracle.
fn judge_greeted(
    steps: Option<&str>,
    past: [Past; 2],
    violations: &[(OracleKind, u64)],
) -> Judgement {
    judge_greeted_closing(steps, past, violations, None)
}

/// [`judge_greeted`], each connection keeping its unmet expectation, whose connection
/// ended `closed_after` ms past its deadline when given.
fn judge_greeted_closing(
    steps: Option<&str>,
    past: [Past; 2],
    violations: &[(OracleKind, u64)],
    closed_after: Option<f64>,
) -> Judgement {
    let steps = steps.unwrap_or(
        r#"{ expect = "ack" }, { send = { type = "ask" } }, { expect = "reply", within = "50ms" }"#,
    );
    let text = format!(
        "name = \"g\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{steps}]\n"
    );
    let scenario = crate::scenario::load_str(&text, "g.toml").unwrap();
    let plan = crate::plan::build(&scenario, 1);
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .zip(past)
        .map(|(c, past)| {
            let mut counters = greeted();
            let mut a = attempt(End::Accepted);
            match past {
                Past::Ignored => {}
                Past::Replied => {
                    counters.messages_received += 1;
                    counters.json_records += 1;
                    counters.expect.expectations_met += 1;
                    counters
                        .expect
                        .events
                        .entry("reply".into())
                        .or_default()
                        .arrived = 1;
                }
                Past::OtherKind => {
                    counters.messages_received += 1;
                    counters.json_records += 1;
                }
                Past::Closed => a.cause = Some(Cause::ServerClose(1011)),
                Past::RefusedFormat => a.cause = Some(Cause::ServerClose(1002)),
            }
            if let Some(after) = closed_after {
                a.ended_us = Some(((100.0 + after) * 1000.0) as u64);
            }
            let mut r = report(c, a, counters);
            if matches!(past, Past::RefusedFormat) {
                r.answer = Some(crate::model::Answer {
                    cause: Cause::ServerClose(1002),
                    detail: "Close 1002".into(),
                    body: "bad handshake".into(),
                    retry_after_s: None,
                });
            }
            if closed_after.is_some() {
                r.violations = vec![Violation {
                    at_ms: 100.0,
                    ..unmet(c.id, false)
                }];
            }
            r
        })
        .collect();
    judge_run(&plan, &reports, violations)
}

/// What a connection that got its greeting (`ack`) and sent one request counted: one
/// of its two expectations met.
fn greeted() -> crate::model::Counters {
    let mut counters = crate::model::Counters {
        messages_sent: 1,
        messages_received: 1,
        json_records: 1,
        ..Default::default()
    };
    let e = &mut counters.expect;
    e.expectations = 2;
    e.expectations_met = 1;
    e.events.entry("ack".into()).or_default().arrived = 1;
    counters
}

/// Judges a completed run of `plan` with `reports`, no violation, and `coverage` of its
/// shared tokens.
fn judge_covered(plan: &Plan, reports: &[ConnReport], coverage: &Coverage) -> Judgement {
    judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan,
        reports,
        by_oracle: &BTreeMap::new(),
        coverage,
        stopped: StopReason::Completed,
        stalls: &ClientStalls::default(),
        kept: &[],
        redactor: &Redactor::default(),
        target: TARGET,
    })
}

/// Judges a completed run of `plan` with `reports` and `violations` by oracle.
fn judge_run(plan: &Plan, reports: &[ConnReport], violations: &[(OracleKind, u64)]) -> Judgement {
    judge_completed_by(plan, reports, &violations.iter().copied().collect())
}

/// A server that sends its greeting and then answers no request on any connection, and
/// closes none, never exercised the request path: its unmet expectations are no race but
/// a server that does not speak the scenario's protocol (or ignores these requests).
#[test]
fn a_server_that_answers_no_request_past_its_greeting_is_unusable_not_violations() {
    let unmet = [(OracleKind::Completeness, 2)];
    let j = judge_greeted(None, [Past::Ignored; 2], &unmet);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "no request got any answer past the handshake (2 sent, 0 answered) and the \
             server closed none of those connections, so"
        ) && hint.contains("2 expectations went unmet")
            && hint.contains("may not speak the scenario's protocol or message format")
            && hint.contains("a race whose window outlasts the script's first send")
            && !hint.contains("slower"),
        "{hint}"
    );
}

/// A server whose only closes say it could not take what was sent as its protocol (RFC
/// 6455 1002, 1003, 1007: a SignalR hub closing a River handshake with 1002 "bad
/// handshake") answered nothing either: unusable, naming the closes. With a request
/// answered elsewhere, judged as usual.
#[test]
fn closes_that_refuse_the_message_format_are_no_answer() {
    let unmet = [(OracleKind::Completeness, 2)];
    let j = judge_greeted(None, [Past::RefusedFormat, Past::Ignored], &unmet);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "(2 sent, 0 answered) and the server closed connections only to say it could not \
             take what was sent as its protocol (1002 ×1, the first with reason \"bad \
             handshake\"), so 2 expectations went unmet"
        ),
        "{hint}"
    );
    let j = judge_greeted(None, [Past::RefusedFormat, Past::Replied], &unmet);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// Beside forged tokens the server refused, the same silence names the valid tokens'
/// connections as the silent ones and says the refusals were judged: "closed no
/// connection" read against the refusals the console counts.
#[test]
fn unusable_says_the_forged_tokens_refusals_were_judged() {
    let text = r#"
name = "g"
duration = "1s"
[[group]]
name = "g"
users = 2
steps = [{ expect = "ack" }, { send = { type = "ask" } }, { expect = "reply", within = "50ms" }]
[[group]]
name = "bad"
users = 3
forge = "garbage"
steps = [{ expect = "ack" }]
"#;
    let scenario = crate::scenario::load_str(text, "g.toml").unwrap();
    let plan = crate::plan::build(&scenario, 1);
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            if !super::valid_token(&plan, c.token) {
                return report(
                    c,
                    attempt(End::RefusedAfterUpgrade(1008)),
                    Default::default(),
                );
            }
            report(c, attempt(End::Accepted), greeted())
        })
        .collect();
    let j = judge_run(&plan, &reports, &[(OracleKind::Completeness, 2)]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "no request of a valid token's connection got any answer past the handshake (2 \
             sent, 0 answered) and the server closed none of those connections (its refusals \
             of the 3 forged tokens were judged, and broke nothing), so 2 expectations"
        ),
        "{hint}"
    );
}

/// The same silence on connections that closed right after their deadlines cannot tell a
/// deaf server from a slow one: the hint says both, and how to tell. Connections held open
/// long past their deadlines saw no late answer either: deaf, as before.
#[test]
fn silence_seen_only_up_to_the_deadlines_may_be_slowness() {
    let unmet = [(OracleKind::Completeness, 2)];
    let j = judge_greeted_closing(None, [Past::Ignored; 2], &unmet, Some(12.0));
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "or it answers slower than the scripts waited: every connection closed within 12 \
             ms of its deadline"
        ),
        "{hint}"
    );
    let j = judge_greeted_closing(None, [Past::Ignored; 2], &unmet, Some(5_000.0));
    assert!(!j.hint.unwrap_or_default().contains("slower"));
}

/// Any answer past the greeting, on any connection, and the run is judged as usual: a
/// server that answers some requests and drops others is the dropped-events race. So is
/// one that ends connections itself, one whose run broke another oracle, and one whose
/// script sends before it waits for anything (the first frame may be the answer; and a
/// server that drops every early message is the early-send race).
#[test]
fn a_server_that_answers_any_request_or_closes_is_judged_as_usual() {
    let unmet = [(OracleKind::Completeness, 1)];
    for (past, why) in [
        ([Past::Replied, Past::Ignored], "one request answered"),
        ([Past::OtherKind, Past::Ignored], "a kind no expect names"),
        ([Past::Closed, Past::Ignored], "a close of the server's"),
    ] {
        let j = judge_greeted(None, past, &unmet);
        assert_eq!(j.verdict, Verdict::Violations, "{why}: {j:?}");
    }
    let other = [(OracleKind::Completeness, 2), (OracleKind::Exclusivity, 1)];
    let j = judge_greeted(None, [Past::Ignored; 2], &other);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let early = r#"{ send = { type = "ask" } }, { expect = "reply", within = "50ms" }"#;
    let j = judge_greeted(Some(early), [Past::Ignored; 2], &unmet);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// A completeness violation of connection `conn`, learned by calibration or declared.
fn unmet(conn: u32, learned: bool) -> Violation {
    Violation {
        oracle: OracleKind::Completeness,
        conn,
        user: conn,
        group: "g".into(),
        jti: format!("j{conn}"),
        at_ms: 1.0,
        expected: "progress".into(),
        seen: "done".into(),
        correlation: None,
        involved: Vec::new(),
        learned,
        unreadable: false,
        ended: None,
        window_ms: None,
        late_ms: None,
        after_request_ms: None,
        conn_end_ms: None,
        cut_by_run_ms: None,
        step: None,
        misread: None,
    }
}

/// Completeness violations that are all steps a server's end cut off are no unmet
/// expectations (a scenario with no `expect` has none): said as scripts cut off.
#[test]
fn unmet_words_tell_steps_cut_off_from_expectations() {
    let with = |expected: &str| {
        let mut r = ConnReport::of_attempts(0, 0, Vec::new());
        r.violations = vec![Violation {
            expected: expected.into(),
            ..unmet(0, false)
        }];
        r
    };
    let cut = format!(
        "{}: 2 more steps (send, close 1000)",
        crate::oracle::CUT_OFF
    );
    assert_eq!(
        unmet_words(&[with(&cut), with(&cut)], 2),
        "the scripts of 2 connections were cut off"
    );
    assert_eq!(
        unmet_words(&[with(&cut), with("reply within 2s")], 2),
        "2 expectations went unmet"
    );
    assert_eq!(unmet_words(&[], 1), "1 expectation went unmet");
}

/// Records that came for requests already answered in full, and nothing else: the hint
/// says they may be a duplicate delivery or a stream the pattern cuts short, and how to
/// allow the stream; beside another finding, the usual hint.
#[test]
fn extras_alone_say_a_stream_needs_a_repeating_pattern() {
    let extra = |conn: u32| Violation {
        expected: crate::oracle::checker::ANSWERED_IN_FULL.into(),
        seen: "next".into(),
        ..unmet(conn, false)
    };
    let by_oracle = BTreeMap::from([(OracleKind::Completeness, 3)]);
    let hint = violations_hint(&by_oracle, &[extra(0), extra(1), extra(1)], &[]);
    assert!(
        hint.contains("every one is a record (`next`) that came for a request whose pattern")
            && hint.contains("a pattern that must allow them (`next+`)")
            && hint.contains("a `next` after the record that ended the request")
            && hint.ends_with("; hunt for a repro"),
        "{hint}"
    );
    let mixed = violations_hint(&by_oracle, &[extra(0), unmet(1, false)], &[]);
    assert!(!mixed.contains("`next+`"), "{mixed}");
}

/// Ordering violations that are all skipped numbers: the hint says how a protocol that
/// promises only an increasing number is declared; a repeat among them, and it does not.
#[test]
fn sequence_skips_alone_say_how_to_allow_gaps() {
    let ordering = |conn: u32, due: i64, got: i64| Violation {
        oracle: OracleKind::Ordering,
        expected: format!("seq = {due}"),
        seen: format!("seq = {got}"),
        ..unmet(conn, false)
    };
    let by_oracle = BTreeMap::from([(OracleKind::Ordering, 2)]);
    let hint = violations_hint(&by_oracle, &[ordering(0, 4, 5), ordering(1, 7, 9)], &[]);
    assert!(
        hint.contains("every ordering violation is a skipped number (seq = 5 where 4 was due)")
            && hint.contains("contiguous = false")
            && hint.ends_with("; hunt for a repro"),
        "{hint}"
    );
    let repeat = violations_hint(&by_oracle, &[ordering(0, 4, 5), ordering(1, 7, 6)], &[]);
    assert!(!repeat.contains("contiguous"), "{repeat}");
}

/// Records that came for requests the server had answered with its error event: the same
/// hint, worded for the error (no pattern was met in full there); beside records for met
/// requests, both are said.
#[test]
fn extras_after_an_error_are_not_said_to_follow_a_met_pattern() {
    let after_error = |conn: u32| Violation {
        expected: crate::oracle::ANSWERED_WITH_ERROR.into(),
        seen: "next".into(),
        ..unmet(conn, false)
    };
    let by_oracle = BTreeMap::from([(OracleKind::Completeness, 2)]);
    let hint = violations_hint(&by_oracle, &[after_error(0), after_error(1)], &[]);
    assert!(
        hint.contains("every one is a record (`next`) that came for a request already answered with an error:")
            && hint.contains("(`next+`)")
            && !hint.contains("met in full"),
        "{hint}"
    );
    let in_full = Violation {
        expected: crate::oracle::ANSWERED_IN_FULL.into(),
        seen: "next".into(),
        ..unmet(2, false)
    };
    let both = violations_hint(&by_oracle, &[after_error(0), in_full], &[]);
    assert!(
        both.contains("already met in full (or that was answered with an error)"),
        "{both}"
    );
}

/// Violations that all rest on what calibration learned say so, and what a best-effort
/// kind means; one from the scenario's own steps, or from a session oracle, and the hint
/// is the usual one.
#[test]
fn violations_all_of_learned_invariants_say_what_they_rest_on() {
    let plan = plan();
    let judged = |learned: [bool; 2], session: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .zip(learned)
            .map(|(c, learned)| {
                // Answered: records of a kind, and one of the two expectations met.
                let counters = crate::model::Counters {
                    messages_sent: 2,
                    messages_received: 6,
                    json_records: 6,
                    ..Default::default()
                };
                let mut r = report(c, attempt(End::Accepted), counters);
                r.counters.expect.expectations = 2;
                r.counters.expect.expectations_met = 1;
                r.counters.expect.events.insert(
                    "done".into(),
                    crate::model::Tally {
                        expected: 2,
                        arrived: 2,
                    },
                );
                r.violations = vec![unmet(c.id, learned)];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        let mut by_oracle: BTreeMap<OracleKind, u64> = [(OracleKind::Completeness, 2)].into();
        if session > 0 {
            by_oracle.insert(OracleKind::Exclusivity, session);
        }
        judge_completed_by(&plan, &reports, &by_oracle)
    };
    let note = "every violation is of an invariant calibration learned";
    let all = judged([true, true], 0);
    assert_eq!(all.verdict, Verdict::Violations);
    assert!(all.hint.as_deref().unwrap_or("").contains(note), "{all:?}");
    assert!(all.hint.as_deref().unwrap_or("").contains("learned.toml"));
    for (learned, session) in [([true, false], 0), ([false, false], 0), ([true, true], 1)] {
        let j = judged(learned, session);
        assert_eq!(j.verdict, Verdict::Violations);
        assert!(
            !j.hint.as_deref().unwrap_or("").contains(note),
            "{learned:?} {session}: {j:?}"
        );
    }
}

/// Two accepted connections of `plan`, each with one unmet expectation misread as
/// `misread`, `tune` then applied to each report.
fn misread_reports(
    plan: &Plan,
    misread: &crate::model::Misread,
    tune: impl Fn(&mut ConnReport),
) -> Vec<ConnReport> {
    plan.conns
        .iter()
        .take(2)
        .map(|c| {
            let counters = crate::model::Counters {
                messages_sent: 3,
                messages_received: 3,
                json_records: 3,
                ..Default::default()
            };
            let mut r = report(c, attempt(End::Accepted), counters);
            r.violations = vec![Violation {
                misread: Some(misread.clone()),
                ..unmet(c.id, false)
            }];
            r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
            tune(&mut r);
            r
        })
        .collect()
}

/// Every expectation unmet while its answers came in a shape it does not read (its kinds
/// without the field it correlates on), and no expectation correlated on that field was
/// met anywhere: the scenario misreads the protocol, unreadable. When one was, the
/// reading works, and the losses stand.
#[test]
fn answers_the_scenario_misreads_are_no_loss() {
    let plan = plan();
    let misread = crate::model::Misread::NoCorrelationField {
        field: "id".into(),
        carried: vec!["type".into(), "request_id".into()],
        kinds: vec!["reply".into()],
        came_with: Vec::new(),
    };
    let judged = |arrived: u64, met_on_id: u64| {
        let reports = misread_reports(&plan, &misread, |r| {
            let tally = crate::model::Tally {
                expected: 3,
                arrived,
            };
            r.counters.expect.events.insert("reply".into(), tally);
            if met_on_id > 0 {
                r.counters.expect.correlated_met.insert("id".into());
            }
        });
        judge_unmet(&plan, &reports, 2)
    };
    let j = judged(0, 0);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "without the field they correlate on (\"id\"; the first carried type, request_id)"
        ) && hint.contains("check `correlate`"),
        "{hint}"
    );
    // The kind arrived, for an expectation correlated on `id` that was met: the field
    // is read, and the losses stand. Arrived only for others (uncorrelated ones), it
    // proves nothing of `id`.
    assert_eq!(judged(1, 1).verdict, Verdict::Violations);
    assert_eq!(judged(1, 0).verdict, Verdict::Unreadable);
}

/// An expectation unmet later on a connection whose earlier one was misread (a join whose
/// reply the scenario could not read, then the event the join should have set up): the
/// script went on past a step it could not read, and proves no loss after it either. One
/// on a connection where nothing was misread stands as a loss.
#[test]
fn a_loss_after_a_misread_step_on_its_connection_is_no_loss_either() {
    let plan = plan();
    let misread = crate::model::Misread::NoCorrelationField {
        field: "ref".into(),
        carried: Vec::new(),
        kinds: vec!["phx_reply".into()],
        came_with: Vec::new(),
    };
    let later = |conn: u32| Violation {
        at_ms: 4_000.0,
        ..unmet(conn, false)
    };
    let with_later = |on: &[u32]| {
        let mut reports = misread_reports(&plan, &misread, |_| {});
        for r in &mut reports {
            if on.contains(&r.id) {
                r.violations.push(later(r.id));
            }
        }
        judge_unmet(&plan, &reports, 2 + on.len() as u64)
    };
    let j = with_later(&[0, 1]);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "4 expectations went unmet (2 of them later on the same connections, whose \
             scripts went on past a step they could not read)"
        ) && hint.contains("the first was no object: an array's positions read /0, /1"),
        "{hint}"
    );
    // A loss on a connection where nothing was misread is the server's.
    let mut reports = misread_reports(&plan, &misread, |_| {});
    reports[1].violations = vec![later(reports[1].id)];
    assert_eq!(judge_unmet(&plan, &reports, 2).verdict, Verdict::Violations);
    // Nor one before the misread step on its own connection.
    let mut reports = misread_reports(&plan, &misread, |_| {});
    let early = Violation {
        at_ms: 0.5,
        ..unmet(reports[0].id, false)
    };
    reports[0].violations.push(early);
    assert_eq!(judge_unmet(&plan, &reports, 3).verdict, Verdict::Violations);
}

/// A group whose every connection had its checked request turned away is turned away,
/// whatever another group served without a violation did (posters refused by policy,
/// readers reading fine): no race to hunt. A loss in the other group keeps the run's
/// violations.
#[test]
fn a_group_refused_everywhere_beside_a_clean_group_is_turned_away() {
    let mut plan = plan();
    plan.groups = vec!["posters".into(), "readers".into()];
    plan.conns[1].group = 1;
    let said_no = crate::model::Misread::WrongValue {
        path: "status".into(),
        held: Some("\"forbidden\"".into()),
        wanted: Some("\"ok\"".into()),
        kinds: vec!["reply".into()],
    };
    let reader = plan.conns[1].id;
    let reports = |reader_lost: bool| {
        misread_reports(&plan, &said_no, |r| {
            r.violations[0].group = "posters".into();
            r.violations[0].step = StepPlace::of(&[3]).shown();
            if r.id == reader {
                r.violations = if reader_lost {
                    vec![Violation {
                        group: "readers".into(),
                        ..unmet(reader, false)
                    }]
                } else {
                    Vec::new()
                };
                if !reader_lost {
                    r.violations_by_oracle.clear();
                }
                r.counters.expect.expectations_met = 2;
            }
        })
    };
    let j = judge_unmet(&plan, &reports(false), 1);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains("step 3 of group \"posters\""), "{hint}");
    assert_eq!(
        judge_unmet(&plan, &reports(true), 2).verdict,
        Verdict::Violations
    );
}

/// A step whose checked answers said no on every connection (a post to a room the
/// server refuses) is turned away, whether or not another step's checked answers passed
/// (the join before it): a `where` test added to the join must not make the refusal a
/// race. A checked answer that passed at the refused step itself, on any connection,
/// leaves the refusals standing as losses.
#[test]
fn a_step_refused_everywhere_is_no_race_whatever_other_steps_passed() {
    let plan = plan();
    let said_no = crate::model::Misread::WrongValue {
        path: "status".into(),
        held: Some("\"forbidden\"".into()),
        wanted: Some("\"ok\"".into()),
        kinds: vec!["reply".into()],
    };
    let join = StepPlace::of(&[2]);
    let post = StepPlace::of(&[3]);
    let judged = |passed_at: StepPlace| {
        let reports = misread_reports(&plan, &said_no, |r| {
            r.violations[0].step = post.shown();
            r.counters.expect.expectations_met = 1;
            r.counters.expect.checked_met = crate::model::CheckedMet::at_step(passed_at, 1);
        });
        judge_unmet(&plan, &reports, 2)
    };
    let j = judged(join);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the server answered its requests checked at step 3 on every connection")
            && hint.contains("what the tests check at step 3 was never exercised"),
        "{hint}"
    );
    assert_eq!(judged(post).verdict, Verdict::Violations);
    // A count read back from a file has no step: as if it passed at the refused one.
    assert_eq!(judged(StepPlace::NONE).verdict, Verdict::Violations);
    // Step numbers restart in every group: with two, the hint says whose step it is.
    let mut two = plan.clone();
    two.groups[0] = "posters".into();
    two.groups.push("readers".into());
    let reports = misread_reports(&two, &said_no, |r| {
        r.violations[0].step = post.shown();
        r.violations[0].group = "posters".into();
    });
    let hint = judge_unmet(&two, &reports, 2).hint.unwrap_or_default();
    assert!(
        hint.contains("checked at step 3 of group \"posters\" on every connection"),
        "{hint}"
    );
    // Another group's step 3 passing is no pass at this group's step 3: the readers
    // passed their step 3 and were refused at their step 5, the posters at their step 3.
    let mut groups = two.clone();
    groups.conns[1].group = 1;
    let reports = misread_reports(&groups, &said_no, |r| {
        let (group, step) = if r.id == groups.conns[1].id {
            ("readers", StepPlace::of(&[5]))
        } else {
            ("posters", post)
        };
        r.violations[0].group = group.into();
        r.violations[0].step = step.shown();
        if group == "readers" {
            r.counters.expect.expectations_met = 1;
            r.counters.expect.checked_met = crate::model::CheckedMet::at_step(post, 1);
        }
    });
    let j = judge_unmet(&groups, &reports, 2);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("step 3 of group \"posters\" and step 5 of group \"readers\""),
        "{hint}"
    );
}

/// Some users' requests answered no in the same words every time, and the rest served:
/// VIOLATIONS still (a race may refuse the same way), but the hint says a server refusing
/// those users by policy reads the same. Not when one of those connections had the same
/// step's test pass at another try (a refusal now and then is no policy), not when the
/// answers said different things, and not without the connections' reports to tell.
#[test]
fn some_users_refused_in_the_same_words_are_said_to_read_as_a_policy() {
    let plan = plan();
    let refused = |conn: u32, held: &str| Violation {
        step: Some("3".into()),
        misread: Some(crate::model::Misread::WrongValue {
            path: "status".into(),
            held: Some(held.into()),
            wanted: Some("\"ok\"".into()),
            kinds: vec!["reply".into()],
        }),
        ..unmet(conn, false)
    };
    let kept = [refused(0, "\"forbidden\""), refused(1, "\"forbidden\"")];
    let by_oracle: BTreeMap<OracleKind, u64> = [(OracleKind::Completeness, 2)].into();
    let reports = |passed_at_3: bool| -> Vec<ConnReport> {
        plan.conns[..2]
            .iter()
            .map(|c| {
                let mut r = report(c, attempt(End::Accepted), Default::default());
                if passed_at_3 && c.id == 1 {
                    r.counters.expect.checked_met =
                        crate::model::CheckedMet::at_step(StepPlace::of(&[3]), 1);
                }
                r
            })
            .collect()
    };
    let note = "every one is a checked answer that said no in the same words (`status` held \
                \"forbidden\" where \"ok\" was wanted), to 2 users (0, 1): a server that \
                refuses those users by policy reads the same";
    let hint = violations_hint(&by_oracle, &kept, &reports(false));
    assert!(
        hint.contains(note) && hint.ends_with("if it should serve them, hunt for a repro"),
        "{hint}"
    );
    assert!(!violations_hint(&by_oracle, &kept, &reports(true)).contains(note));
    assert!(!violations_hint(&by_oracle, &kept, &[]).contains("by policy"));
    let worded = [refused(0, "\"forbidden\""), refused(1, "\"denied\"")];
    assert!(!violations_hint(&by_oracle, &worded, &reports(false)).contains("by policy"));
    // The other way round: "ok" where "error" was wanted (a join to another user's private
    // topic) is a door left open, never a policy of refusing to leave out.
    let let_in = |conn: u32| Violation {
        misread: Some(crate::model::Misread::WrongValue {
            path: "/4/status".into(),
            held: Some("\"ok\"".into()),
            wanted: Some("\"error\"".into()),
            kinds: vec!["phx_reply".into()],
        }),
        ..refused(conn, "\"ok\"")
    };
    let hint = violations_hint(&by_oracle, &[let_in(0), let_in(1)], &reports(false));
    assert!(
        hint.contains("said yes where the scenario wanted a refusal")
            && hint.contains("an authorization bypass")
            && !hint.contains("by policy"),
        "{hint}"
    );
}

/// Refusals worded per user (`"user-0-denied"`, `"user-1-denied"` where every test wants
/// `"ok"`) are still one refusal everywhere; two answers each holding what the other
/// wanted (`"A"` where `"B"` was wanted, and the other way round) are crossed, a loss.
#[test]
fn refusals_worded_per_user_are_a_refusal_and_swapped_values_a_loss() {
    let plan = plan();
    let said_no = crate::model::Misread::WrongValue {
        path: "status".into(),
        held: None,
        wanted: None,
        kinds: vec!["reply".into()],
    };
    let judged = |values: [(&str, &str); 2]| {
        let mut reports = misread_reports(&plan, &said_no, |_| {});
        for (r, (held, wanted)) in reports.iter_mut().zip(values) {
            r.violations[0].misread = Some(crate::model::Misread::WrongValue {
                path: "status".into(),
                held: Some(held.into()),
                wanted: Some(wanted.into()),
                kinds: vec!["reply".into()],
            });
        }
        judge_unmet(&plan, &reports, 2).verdict
    };
    let per_user = [
        ("\"user-0-denied\"", "\"ok\""),
        ("\"user-1-denied\"", "\"ok\""),
    ];
    assert_eq!(judged(per_user), Verdict::TargetUnusable);
    assert_eq!(
        judged([("\"A\"", "\"B\""), ("\"B\"", "\"A\"")]),
        Verdict::Violations
    );
}

/// The verdict of two unmet expectations at step 3 misread as `misread`, with one
/// expectation with `where` tests met at step `met` on each connection.
fn judged_met_at(plan: &Plan, misread: &crate::model::Misread, met: &[usize]) -> Verdict {
    let reports = misread_reports(plan, misread, |r| {
        r.violations[0].step = Some("3".into());
        r.counters.expect.checked_met = crate::model::CheckedMet::at_step(StepPlace::of(met), 1);
    });
    judge_unmet(plan, &reports, 2).verdict
}

/// Every unmet expectation failed a `where` test on a field its answer did not carry, and
/// no expectation with tests was met in the run: a misnamed path (`statsu`), unreadable,
/// never a loss to hunt. One met expectation with tests shows the answers carry what is
/// tested: the missing field is then the server's, a finding.
#[test]
fn a_where_test_on_a_field_no_answer_carried_is_misread_not_a_loss() {
    let plan = plan();
    let misread = crate::model::Misread::NoCheckedField {
        path: "statsu".into(),
        carried: vec!["type".into(), "id".into(), "status".into()],
        kinds: vec!["reply".into()],
    };
    let judged = |checked_met: u64| {
        let reports = misread_reports(&plan, &misread, |r| {
            r.counters.expect.checked_met =
                crate::model::CheckedMet::at_step(StepPlace::NONE, checked_met);
        });
        judge_unmet(&plan, &reports, 2)
    };
    let j = judged(0);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "each failed a `where` test on a field no answer carried (\"statsu\"; the first \
             carried type, id, status; the records lacking it were of kind `reply`)"
        ) && hint.contains("check the field path in `where` and that every kind the pattern")
            && hint.contains("belongs in an `expect` of its own"),
        "{hint}"
    );
    assert_eq!(judged(1).verdict, Verdict::Violations);
    // Met at another step (a second `where` of the script that passed): that step's
    // answers carry its own field, which says nothing of this one's. Met at this step: the
    // field is there elsewhere, its absence here the server's.
    assert_eq!(judged_met_at(&plan, &misread, &[2]), Verdict::Unreadable);
    assert_eq!(judged_met_at(&plan, &misread, &[3]), Verdict::Violations);
}

/// Every unmet expectation's `where` test wanted the value its answer held, spelled
/// another way (`"n-0"` written, `"n0"` sent and answered), and no checked answer passed:
/// a slip in the scenario, unreadable. Another value (`"n1"`, another request's), or one
/// checked answer that passed, leaves the losses standing.
#[test]
fn a_where_value_spelled_otherwise_than_the_answers_is_a_slip() {
    let plan = plan();
    let slip = |held: &str| crate::model::Misread::WrongValue {
        path: "message.nonce".into(),
        held: Some(format!("{held:?}")),
        wanted: Some("\"n-0\"".into()),
        kinds: vec!["spoken".into()],
    };
    let judged = |held: &str, checked_met: u64| {
        let reports = misread_reports(&plan, &slip(held), |r| {
            r.counters.expect.checked_met =
                crate::model::CheckedMet::at_step(StepPlace::NONE, checked_met);
        });
        judge_unmet(&plan, &reports, 2)
    };
    let j = judged("n0", 0);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("(the first: wants \"n-0\", held \"n0\")")
            && hint.contains("Did you mean \"n0\"?"),
        "{hint}"
    );
    assert_eq!(judged("N_0", 0).verdict, Verdict::Unreadable);
    assert_ne!(judged("n1", 0).verdict, Verdict::Unreadable);
    assert_eq!(judged("n0", 1).verdict, Verdict::Violations);
    // A `where` of another step that passed says nothing of this step's value.
    assert_eq!(judged_met_at(&plan, &slip("n0"), &[2]), Verdict::Unreadable);
    assert_eq!(judged_met_at(&plan, &slip("n0"), &[3]), Verdict::Violations);
}

/// Every accepted valid connection's checked answers said no (`success = false` where the
/// `where` test wants `true`) and no checked answer said yes in the whole run: the server
/// turned every request away (Home Assistant answering each string `id` with
/// `invalid_format`), target unusable, never a race to hunt. One answer that said yes, or
/// one connection whose answers never said no, leaves the losses standing.
#[test]
fn answers_that_said_no_on_every_connection_are_no_race() {
    let plan = plan();
    let said_no = crate::model::Misread::WrongValue {
        path: "success".into(),
        held: Some("false".into()),
        wanted: None,
        kinds: vec!["result".into()],
    };
    let judged = |checked_met: u64, everywhere: bool| {
        let second = plan.conns[1].id;
        let reports = misread_reports(&plan, &said_no, |r| {
            r.counters.expect.checked_met =
                crate::model::CheckedMet::at_step(StepPlace::NONE, checked_met);
            if !everywhere && r.id == second {
                r.violations[0].misread = None;
            }
        });
        judge_unmet(&plan, &reports, 2)
    };
    let j = judged(0, true);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("turned every request away") && hint.contains("(2 expectations unmet)"),
        "{hint}"
    );
    assert_eq!(judged(1, true).verdict, Verdict::Violations);
    assert_eq!(judged(0, false).verdict, Verdict::Violations);
    // An expectation without a `where` test met on each connection (its request served):
    // still no checked answer passed, but the hint does not say every request was turned
    // away.
    let mut served_first = misread_reports(&plan, &said_no, |_| {});
    for r in &mut served_first {
        r.counters.expect.expectations_met = 1;
    }
    let j = judge_unmet(&plan, &served_first, 2);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the server answered its checked requests on every connection")
            && hint.contains("it turned those requests away and answered others")
            && !hint.contains("nothing the script is for was exercised"),
        "{hint}"
    );
    // Each answer held another request's value (crossed answers: `result = "B"` where
    // `"A"` was wanted, and the other way round): a loss, not a refusal.
    let mut crossed = misread_reports(&plan, &said_no, |_| {});
    for (r, held) in crossed.iter_mut().zip(["\"A\"", "\"B\""]) {
        r.violations[0].misread = Some(crate::model::Misread::WrongValue {
            path: "result".into(),
            held: Some(held.into()),
            wanted: None,
            kinds: vec!["result".into()],
        });
    }
    assert_eq!(judge_unmet(&plan, &crossed, 2).verdict, Verdict::Violations);
    // One refusal-looking answer per connection, beside an expectation whose kinds came
    // with the other request's id: the two requests' answers crossed, a loss.
    let mut pipelined = misread_reports(&plan, &said_no, |_| {});
    for r in &mut pipelined {
        r.violations[0].correlation = Some(format!("b-{}", r.id));
        let mut other = r.violations[0].clone();
        other.correlation = Some(format!("a-{}", r.id));
        other.misread = Some(crate::model::Misread::OtherCorrelationValue {
            field: "id".into(),
            held: format!("b-{}", r.id),
            id_like: true,
            sent: false,
            kinds: vec!["result".into()],
        });
        r.violations.push(other);
        r.violations_by_oracle = [(OracleKind::Completeness, 2)].into();
    }
    assert_eq!(
        judge_unmet(&plan, &pipelined, 4).verdict,
        Verdict::Violations
    );
    // The value held, the same everywhere, is what another `expect` of the scenario wants
    // there (`result = "B"`): the next request's answer under this one's id.
    let mut late_ids = plan.clone();
    let wants = |value: &str| {
        let Step::Expect(mut e) = expect_step("result") else {
            unreachable!("an expect step")
        };
        e.checks = vec![crate::model::FieldTest {
            path: "result".into(),
            test: crate::model::Test::Equals(serde_json::json!(value)),
        }];
        Step::Expect(e)
    };
    late_ids.scripts = vec![vec![wants("A"), wants("B")]];
    let mut shifted = misread_reports(&late_ids, &said_no, |_| {});
    for r in &mut shifted {
        r.violations[0].misread = Some(crate::model::Misread::WrongValue {
            path: "result".into(),
            held: Some("\"B\"".into()),
            wanted: None,
            kinds: vec!["result".into()],
        });
    }
    assert_eq!(
        judge_unmet(&late_ids, &shifted, 2).verdict,
        Verdict::Violations
    );
}

/// Correlated records of other kinds only (Phoenix's `phx_reply` acks) while the kind the
/// pattern names never came: a loss, as the buggy Phoenix case shows, never "misread".
#[test]
fn acks_of_other_kinds_beside_a_lost_kind_are_a_loss() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .take(1)
        .map(|c| {
            let counters = crate::model::Counters {
                messages_sent: 1,
                messages_received: 2,
                json_records: 2,
                ..Default::default()
            };
            let mut r = report(c, attempt(End::Accepted), counters);
            r.violations = vec![Violation {
                misread: Some(crate::model::Misread::OtherKinds {
                    came: vec!["phx_reply".into()],
                    kinds: vec!["postgres_changes".into()],
                }),
                ..unmet(c.id, false)
            }];
            r
        })
        .collect();
    let j = judge_unmet(&plan, &reports, 1);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// Every connection's request answered, correlated with it, only with a kind whose name
/// says no (Pusher's `pusher:subscription_error` to a private channel's subscribe), the
/// kind named never having come anywhere: the server refused every request in band, target
/// unusable, and the hint says how to read it as the error event. An info kind in its place
/// (Supabase Realtime's `system`), or one connection that got no such answer, and the losses
/// stand.
#[test]
fn every_request_answered_with_a_refusal_kind_is_no_race() {
    let plan = plan();
    let judged_met = |came: &str, everywhere: bool, met: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .map(|c| {
                let mut counters = crate::model::Counters {
                    messages_sent: 1,
                    messages_received: 2,
                    json_records: 2,
                    ..Default::default()
                };
                counters.expect.expectations_met = met;
                let mut r = report(c, attempt(End::Accepted), counters);
                let misread =
                    (everywhere || c.id == 0).then(|| crate::model::Misread::OtherKinds {
                        came: vec![came.into()],
                        kinds: vec!["pusher_internal:subscription_succeeded".into()],
                    });
                r.violations = vec![Violation {
                    misread,
                    correlation: Some(format!("room-{}", c.id)),
                    ..unmet(c.id, false)
                }];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        judge_unmet(&plan, &reports, 2)
    };
    let judged = |came: &str, everywhere: bool| judged_met(came, everywhere, 0);
    let j = judged("pusher:subscription_error", true);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("answered the requests of every connection with `pusher:subscription_error`")
            && hint.contains(
                "never with what their patterns name (`pusher_internal:subscription_succeeded`)"
            )
            && hint.contains("declare `[oracles] error_event = \"pusher:subscription_error\"`")
            && hint.contains("it turned every request away in band"),
        "{hint}"
    );
    // Requests of other steps met: only those answered so were turned away.
    let some = judged_met("pusher:subscription_error", true, 1);
    let hint = some.hint.unwrap_or_default();
    assert!(
        hint.contains("it turned those requests away in band and served others"),
        "{hint}"
    );
    assert_eq!(judged("system", true).verdict, Verdict::Violations);
    assert_eq!(
        judged("pusher:subscription_error", false).verdict,
        Verdict::Violations
    );
}

/// Two connections per user, one live allowed per user (declared): the server's "too many
/// connections" close of each user's second connection is that limit enforced. The hint
/// says so and how to list the code as a refusal, never that it reads as rate limiting
/// (shedding it would make the run inconclusive), and sends nobody hunting; the same
/// closes without the declaration stay rate limiting.
#[test]
fn closes_over_a_declared_per_user_limit_are_the_limit_not_load_shed() {
    let text = "name = \"v\"\nduration = \"1s\"\n[oracles]\nexclusive = { max_live = 1, per = \"user\" }\n\
                [[group]]\nname = \"g\"\nusers = 2\nconnections_per_user = 2\ntoken = \"per-connection\"\n\
                steps = [{ expect = \"welcome\", within = \"1s\" }, { close = 1000 }]\n";
    let scenario = crate::scenario::load_str(text, "v.toml").unwrap();
    let limited = crate::plan::build(&scenario, 1);
    let mut unlimited = limited.clone();
    unlimited.oracles.session.max_live = None;
    let reports_of = |plan: &Plan, (code, reason): (u16, &str)| -> Vec<ConnReport> {
        let mut firsts = BTreeSet::new();
        plan.conns
            .iter()
            .map(|c| {
                let counters = crate::model::Counters {
                    json_records: 1,
                    ..Default::default()
                };
                if firsts.insert(c.user) {
                    return report(c, attempt(End::Accepted), counters);
                }
                let mut r = report(c, unaccepted(Some(Cause::ServerClose(code))), counters);
                r.answer = Some(crate::model::Answer {
                    cause: Cause::ServerClose(code),
                    detail: format!("close {code}"),
                    body: reason.into(),
                    retry_after_s: None,
                });
                r.violations = vec![unmet(c.id, false)];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect()
    };
    let judged_with = |plan: &Plan, close: (u16, &str)| {
        let reports = reports_of(plan, close);
        let kept: Vec<Violation> = reports.iter().flat_map(|r| r.violations.clone()).collect();
        judge_completed_kept(
            plan,
            &reports,
            &[(OracleKind::Completeness, 2)].into(),
            &kept,
        )
    };
    // Nothing else wrong (the refused connections' scripts cut, not failed): the limit
    // the scenario declares, enforced, is a clean run, not "not every connection ran its
    // script: this run proves nothing" for a code the scenario does not list.
    for code in [4429, 4008, 4409] {
        let mut reports = reports_of(&limited, (code, "max connections per user"));
        for r in &mut reports {
            r.violations.clear();
            r.violations_by_oracle.clear();
        }
        let j = judge_completed(&limited, &reports);
        assert_eq!(j.verdict, Verdict::Clean, "{code}: {:?}", j.hint);
        let j = judge_completed(&unlimited, &reports);
        assert_ne!(
            j.verdict,
            Verdict::Clean,
            "undeclared, {code}: {:?}",
            j.hint
        );
    }
    let judged = |plan: &Plan| judged_with(plan, (4008, "too many connections"));
    let j = judged(&limited);
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "each of a user that already had 1 connection accepted: the declared \
             exclusivity limit (`max_live = 1` per user) enforced, not load shed"
        ) && hint.contains("`[oracles] reject = { close = [1008, 4008] }`")
            && hint.contains("refused over the declared exclusivity limit")
            && !hint.contains("rate limiting")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
    let hint = judged(&unlimited).hint.unwrap_or_default();
    assert!(
        hint.contains("reads as rate limiting") && !hint.contains("exclusivity limit"),
        "{hint}"
    );
    // A 4409 "already connected" to each newcomer is the limit turning it away, not a
    // takeover of an older session (which stayed accepted): no `replaced` advice.
    let hint = judged_with(&limited, (4409, "already connected"))
        .hint
        .unwrap_or_default();
    assert!(
        hint.contains("refused over the declared exclusivity limit") && !hint.contains("takeover"),
        "{hint}"
    );
}

/// Every connection had an attempt closed with 1002 "expected HANDSHAKE_REQ" (a script
/// that left the protocol's handshake out of its first attempt, then reconnected with
/// it), and every violation is an expectation that
/// close cut before anything came: the script broke the protocol, target unusable, no race.
/// One connection that never got such a close (a race closing some), and it stays a loss.
#[test]
fn every_connection_closed_for_breaking_the_protocol_is_no_race() {
    let plan = plan();
    let judged = |everywhere: bool| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .map(|c| {
                let counters = crate::model::Counters {
                    messages_sent: 1,
                    ..Default::default()
                };
                let broke = everywhere || c.id == 0;
                let cause = if broke { 1002 } else { 1000 };
                // Refused, then accepted on the reconnect that sent the handshake.
                let mut r = report(c, unaccepted(Some(Cause::ServerClose(cause))), counters);
                r.attempts.push(attempt(End::Accepted));
                r.answer = Some(crate::model::Answer {
                    cause: Cause::ServerClose(cause),
                    detail: format!("close {cause}"),
                    body: "expected HANDSHAKE_REQ".into(),
                    retry_after_s: None,
                });
                if broke {
                    r.violations = vec![Violation {
                        ended: Some(crate::model::StreamEnded {
                            close_code: Some(1002),
                            answered: false,
                        }),
                        ..unmet(c.id, false)
                    }];
                    r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                }
                r
            })
            .collect();
        let kept: Vec<Violation> = reports.iter().flat_map(|r| r.violations.clone()).collect();
        let unmet = kept.len() as u64;
        judge_completed_kept(
            &plan,
            &reports,
            &[(OracleKind::Completeness, unmet)].into(),
            &kept,
        )
    };
    let j = judged(true);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("closed an attempt of every connection with 1002 \"expected HANDSHAKE_REQ\"")
            && hint.contains("no race to hunt"),
        "{hint}"
    );
    assert_ne!(judged(false).verdict, Verdict::TargetUnusable);
}

/// The same 1002 on every connection, after the server's own acknowledgement of each
/// session (`accepted = { message = "connection_ack" }`, and each was accepted): the client
/// waited for the ack and then heard "you broke the protocol" (a graphql-transport-ws
/// server closing a `subscribe` sent after its ack with 1002 "subscribe before
/// connection_ack", its race hit on every connection). Judged as usual, a race to hunt,
/// never a script that does not speak the protocol; nor a request path never exercised.
#[test]
fn a_protocol_close_after_the_servers_own_ack_is_a_race_not_a_script_fault() {
    let mut plan = plan();
    plan.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "connection_ack".into(),
    };
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .take(2)
        .map(|c| {
            let mut counters = crate::model::Counters {
                messages_sent: 2,
                messages_received: 1,
                json_records: 1,
                ..Default::default()
            };
            counters.expect.expectations = 2;
            counters.expect.expectations_met = 1;
            let mut a = attempt(End::Accepted);
            a.cause = Some(Cause::ServerClose(1002));
            let mut r = report(c, a, counters);
            r.closed_after_acceptance = Some(crate::model::Answer {
                cause: Cause::ServerClose(1002),
                detail: "close 1002".into(),
                body: "subscribe before connection_ack".into(),
                retry_after_s: None,
            });
            r.violations = vec![Violation {
                ended: Some(crate::model::StreamEnded {
                    close_code: Some(1002),
                    answered: false,
                }),
                ..unmet(c.id, false)
            }];
            r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
            r
        })
        .collect();
    let kept: Vec<Violation> = reports.iter().flat_map(|r| r.violations.clone()).collect();
    let j = judge_completed_kept(
        &plan,
        &reports,
        &[(OracleKind::Completeness, 2)].into(),
        &kept,
    );
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    assert!(!j.hint.unwrap_or_default().contains("no race to hunt"));
}

/// Beside a real loss, a violation whose correlated answer came as a kind spelled close to
/// the one its pattern names, which arrived nowhere, is still a misspelling: a hunt sets
/// it aside (it once confirmed a repro built on `RESULTS` while a real race went on beside
/// it). The loss is not; nor is the misspelling once the named kind arrived somewhere.
#[test]
fn a_misspelled_kind_beside_a_real_loss_is_still_set_aside() {
    let plan = plan();
    let typo = Violation {
        misread: Some(crate::model::Misread::OtherKinds {
            came: vec!["RESULT".into()],
            kinds: vec!["RESULTS".into()],
        }),
        correlation: Some("a-1".into()),
        ..unmet(0, false)
    };
    let loss = Violation {
        correlation: Some("b-1".into()),
        ..unmet(1, false)
    };
    let violations = vec![typo, loss];
    let nowhere = |_: &str| false;
    let set_aside = misspelled(&plan, &violations, &nowhere);
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert!(std::ptr::eq(set_aside[0], &violations[0]));
    let arrived_somewhere = |kind: &str| kind == "RESULTS";
    assert!(misspelled(&plan, &violations, &arrived_somewhere).is_empty());
}

/// A kind the pattern names that arrived on no connection, while another kind came
/// correlated with every request (`RESULT` for an `expect` of `PONG`): still violations (a
/// race may lose a kind everywhere), but the hint says the `expect` may be what is wrong.
/// Once the kind arrived somewhere, the note goes.
#[test]
fn a_kind_that_never_arrived_anywhere_is_named_beside_the_violations() {
    let plan = plan();
    let judged = |arrived: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .map(|c| {
                let counters = crate::model::Counters {
                    messages_sent: 1,
                    messages_received: 1,
                    json_records: 1,
                    ..Default::default()
                };
                let mut r = report(c, attempt(End::Accepted), counters);
                let tally = crate::model::Tally {
                    expected: 1,
                    arrived: if c.id == 0 { arrived } else { 0 },
                };
                r.counters.expect.events.insert("PONG".into(), tally);
                r.violations = vec![Violation {
                    misread: Some(crate::model::Misread::OtherKinds {
                        came: vec!["RESULT".into()],
                        kinds: vec!["PONG".into()],
                    }),
                    correlation: Some(format!("s-{}", c.id)),
                    ..unmet(c.id, false)
                }];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        let kept: Vec<Violation> = reports.iter().flat_map(|r| r.violations.clone()).collect();
        judge_completed_kept(
            &plan,
            &reports,
            &[(OracleKind::Completeness, 2)].into(),
            &kept,
        )
    };
    let j = judged(0);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("`PONG` never arrived on any connection, while `RESULT` came correlated"),
        "{hint}"
    );
    let hint = judged(1).hint.unwrap_or_default();
    assert!(!hint.contains("never arrived"), "{hint}");
}

/// A kind the pattern names that never came on any connection, while correlated records
/// of a kind spelled close to it came for every unmet expectation (beside a named kind
/// that did come): a typo in the `expect`, unreadable, and the hint names both. When the
/// kind came on some connection, or what came is spelled nothing like it, the losses
/// stand.
#[test]
fn a_misspelled_kind_that_never_came_is_a_misreading_not_a_loss() {
    let plan = plan();
    let judged_in = |plan: &Plan, complete_arrived: u64, came: &str, correlation: Option<&str>| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .map(|c| {
                let counters = crate::model::Counters {
                    messages_sent: 1,
                    messages_received: 3,
                    json_records: 3,
                    ..Default::default()
                };
                let mut r = report(c, attempt(End::Accepted), counters);
                let tally = |arrived| crate::model::Tally {
                    expected: 1,
                    arrived,
                };
                let events = &mut r.counters.expect.events;
                events.insert("agent_started".into(), tally(1));
                // On the first connection only, when it arrived at all.
                let got = if c.id == 0 { complete_arrived } else { 0 };
                events.insert("agent_complete".into(), tally(got));
                r.violations = vec![Violation {
                    seen: "agent_started".into(),
                    misread: Some(crate::model::Misread::OtherKinds {
                        came: vec![came.into()],
                        kinds: vec!["agent_started".into(), "agent_complete".into()],
                    }),
                    correlation: correlation.map(str::to_string),
                    ..unmet(c.id, false)
                }];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        judge_unmet(plan, &reports, 2)
    };
    let judged_as =
        |complete_arrived, came, correlation| judged_in(&plan, complete_arrived, came, correlation);
    let judged = |complete_arrived, came| judged_as(complete_arrived, came, Some("r1"));
    let j = judged(0, "agent_completed");
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the server answered them with a kind their patterns do not name")
            && hint.contains("\"agent_complete\" never came on any connection")
            && hint.contains("while \"agent_completed\" did, correlated with them")
            && hint.contains("Did you mean \"agent_completed\"?"),
        "{hint}"
    );
    // Uncorrelated, the kind came as they waited: told as what came (a heartbeat spelled
    // close to the kind would read the same), not as an answer.
    let j = judged_as(0, "agent_completed", None);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("a kind their patterns do not name came as they waited")
            && hint.contains("while \"agent_completed\" did. Did you mean")
            && !hint.contains("answered them"),
        "{hint}"
    );
    assert_eq!(judged(1, "agent_completed").verdict, Verdict::Violations);
    assert_eq!(judged(0, "phx_reply").verdict, Verdict::Violations);
    // A kind the script sends itself, which the server pushes too (its own `ping` beside
    // the `pong` it never answered), misspells nothing.
    let text = "name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 4\n\
                steps = [{ send = { type = \"agent_completed\" } }, { close = 1000 }]\n";
    let scenario = crate::scenario::load_str(text, "v.toml").unwrap();
    let sends_it = crate::plan::build(&scenario, 1);
    assert_eq!(
        judged_in(&sends_it, 0, "agent_completed", None).verdict,
        Verdict::Violations
    );
}

/// A declared identity field that never held its connection's own user, anywhere, and
/// held ids that differ from record to record and are no user of the run, names
/// something else: unreadable, no leak; so does one value on every connection that is no
/// user of the run. One of the run's users stamped on everything, a value that is
/// another user of the run, or one record that held its own user, and the mismatches
/// stay identity violations.
#[test]
fn an_identity_field_that_never_holds_a_user_is_misnamed_not_a_leak() {
    let mut plan = plan();
    plan.oracles.identity = Some("id".into());
    let other_user = serde_json::Value::from(plan.tokens[1].sub.as_str()).to_string();
    let judged = |held: &[&str], matched: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .zip(held.chunks(held.len().div_ceil(2)))
            .map(|(c, held)| {
                let mut r = report(c, attempt(End::Accepted), Default::default());
                r.counters.expect.identity_matched = matched;
                r.violations = held
                    .iter()
                    .map(|value| Violation {
                        oracle: OracleKind::Identity,
                        seen: format!("id = {value}"),
                        ..unmet(c.id, false)
                    })
                    .collect();
                r.violations_by_oracle = [(OracleKind::Identity, held.len() as u64)].into();
                r
            })
            .collect();
        let n = held.len() as u64;
        judge_completed_by(&plan, &reports, &[(OracleKind::Identity, n)].into())
    };
    let ids = ["\"s-0\"", "\"s-1\"", "\"s-2\"", "\"s-3\""];
    let j = judged(&ids, 0);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("field \"id\" never held its connection's own user on any connection (4 records checked, none did)")
            && hint.contains("(\"s-0\", \"s-1\", \"s-2\", …) is no user of this run"),
        "{hint}"
    );
    assert_eq!(judged(&ids, 1).verdict, Verdict::Violations);
    // One value on every connection, no user of the run: a field that names something
    // else (or one the server never fills), no leak.
    let one_for_all = ["\"LOCAL\"", "\"LOCAL\""];
    let j = judged(&one_for_all, 0);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("field \"id\" held \"LOCAL\" on every record of all 2 connections")
            && hint.contains("no race to hunt"),
        "{hint}"
    );
    // One of the run's users stamped on every record: whose events leaked.
    let one_user = [other_user.as_str(), other_user.as_str()];
    assert_eq!(judged(&one_user, 0).verdict, Verdict::Violations);
    // On one record only: nothing says it is the same everywhere.
    assert_eq!(judged(&["\"LOCAL\""], 0).verdict, Verdict::Violations);
    let leaked = ["\"s-0\"", other_user.as_str()];
    assert_eq!(judged(&leaked, 0).verdict, Verdict::Violations);
    // Users from outside the run, shaped as its users are: a leak all the same.
    let sub = &plan.tokens[0].sub;
    let stem = sub.trim_end_matches(|c: char| c.is_ascii_digit());
    let outsiders = [format!("\"{stem}1012\""), format!("\"{stem}1013\"")];
    let outsiders: Vec<&str> = outsiders.iter().map(String::as_str).collect();
    assert_eq!(
        judged(&outsiders, 0).verdict,
        Verdict::Violations,
        "{outsiders:?}"
    );
}

/// Deadlines that ran out while the client itself was stalled for a good part of their
/// window are the client's, not the server's; one that a stall barely touched, a violation
/// of another kind, or a violation or stall that was not kept leaves the violations
/// standing.
#[test]
fn deadlines_missed_while_the_client_stalled_are_the_client_s_own() {
    // Two 1 s deadlines, ending at 2.0 s and 2.5 s; the client stalled 1.2–1.8 s.
    let deadline = |conn, at_ms| Violation {
        at_ms,
        window_ms: Some(1000.0),
        step: None,
        misread: None,
        ..unmet(conn, false)
    };
    let kept = vec![deadline(0, 2000.0), deadline(1, 2500.0)];
    let stalls = |at_ms, ms| ClientStalls {
        count: 1,
        longest_ms: ms,
        total_ms: ms,
        kept: vec![crate::model::Stall { at_ms, ms }],
    };
    let stalled_run = stalls(1200.0, 600.0);
    let j = stalled(&kept, 2, &stalled_run).expect("client limited");
    assert_eq!(j.verdict, Verdict::ClientLimited);
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("every violation (2)") && hint.contains("600 ms"),
        "{hint}"
    );

    // A stall of 1.2–1.4 s: 200 ms of the first window, nothing of the second.
    assert!(stalled(&kept, 2, &stalls(1200.0, 200.0)).is_none());
    // A third violation not kept (its window unknown).
    assert!(stalled(&kept, 3, &stalled_run).is_none());
    // A violation of another kind (no window).
    let mut other = kept.clone();
    other[1].window_ms = None;
    assert!(stalled(&other, 2, &stalled_run).is_none());
    // Stalls beyond those kept: where they fell is unknown.
    let mut uncounted = stalled_run.clone();
    uncounted.count = 2;
    assert!(stalled(&kept, 2, &uncounted).is_none());
    // No violation: nothing to excuse.
    assert!(stalled(&[], 0, &stalled_run).is_none());
}

/// One stall, from `at_ms` for `ms` milliseconds, and every stall kept.
fn one_stall(at_ms: f64, ms: f64) -> ClientStalls {
    ClientStalls {
        count: 1,
        longest_ms: ms,
        total_ms: ms,
        kept: vec![crate::model::Stall { at_ms, ms }],
    }
}

/// A Ping whose Pong, due within 500 ms, missed its deadline at 2.0 s, on connection
/// `conn`, which ended for good at `conn_end_ms`.
fn missed_pong(conn: u32, conn_end_ms: Option<f64>) -> Violation {
    Violation {
        at_ms: 2000.0,
        expected: "pong \"p1\" within 500ms".into(),
        seen: "no pong".into(),
        window_ms: Some(500.0),
        conn_end_ms,
        ..unmet(conn, false)
    }
}

/// A deadline missed while the client was stalled, whose connection stayed open long
/// after the stall ended, the client reading all along, with no answer ever seen: a stall
/// only delays reading, so the answer was lost and the miss is a finding, not the
/// client's limit. Ended right after the stall, answered late, or with its connection's
/// end unknown (older results), it is excused as before.
#[test]
fn a_deadline_missed_in_a_stall_stands_when_the_client_caught_up_and_nothing_came() {
    // The wait ran 1.5–2.0 s; the client stalled 1.7–1.95 s (half of it).
    let stall = one_stall(1700.0, 250.0);
    // Open until 2.6 s: it read 650 ms after the stall, more than its 500 ms `within`.
    let lost = vec![missed_pong(0, Some(2600.0))];
    assert!(
        stalled(&lost, 1, &stall).is_none(),
        "a loss, not the client's"
    );
    let note = caught_up_note(&lost, &stall).expect("a note");
    assert!(
        note.contains("1 deadline miss that ran out while this client was stalled stands")
            && note.contains("connection 0's pong \"p1\" within 500ms")
            && note.contains("read for 650 ms more")
            && note.contains("the answer never came"),
        "{note}"
    );

    // The connection ended 150 ms after the stall: it may not have read the answer yet.
    let cut = vec![missed_pong(0, Some(2100.0))];
    let j = stalled(&cut, 1, &stall).expect("client limited");
    assert_eq!(j.verdict, Verdict::ClientLimited);
    assert!(caught_up_note(&cut, &stall).is_none());
    // The answer came, late: slow, not lost, and the stall explains it.
    let late = vec![Violation {
        late_ms: Some(700.0),
        after_request_ms: None,
        ..missed_pong(0, Some(2600.0))
    }];
    assert!(stalled(&late, 1, &stall).is_some());
    assert!(caught_up_note(&late, &stall).is_none());
    // The connection's end unknown (results written before it was kept): as before.
    let older = vec![missed_pong(0, None)];
    assert!(stalled(&older, 1, &stall).is_some());
    // A second stall at 2.1–2.3 s: the client ran 450 ms of those 650, less than the
    // `within` the server is owed.
    let mut twice = one_stall(1700.0, 250.0);
    twice.kept.push(crate::model::Stall {
        at_ms: 2100.0,
        ms: 200.0,
    });
    twice.count = 2;
    assert!(stalled(&lost, 1, &twice).is_some());
    // Beside a miss still excused, the loss keeps the verdict a finding.
    let both = vec![missed_pong(0, Some(2100.0)), missed_pong(1, Some(2600.0))];
    assert!(stalled(&both, 2, &stall).is_none());
}

/// A correlated `expect` missed in a stall is judged as a Pong is; an uncorrelated one is
/// not: its late answer cannot be told from the next expectation's, so a missing one
/// proves no loss. A short `within` is owed at least [`CAUGHT_UP_MIN_MS`] of reading.
#[test]
fn a_caught_up_miss_needs_a_late_answer_that_would_show_and_the_least_reading_time() {
    let stall = one_stall(1700.0, 250.0);
    let expect = |correlation: Option<&str>| Violation {
        expected: "agent_completed within 500ms".into(),
        correlation: correlation.map(str::to_string),
        step: Some("3".into()),
        ..missed_pong(2, Some(2600.0))
    };
    assert!(stalled(&[expect(Some("r-2"))], 1, &stall).is_none());
    let note = caught_up_note(&[expect(Some("r-2"))], &stall).unwrap_or_default();
    assert!(
        note.contains("agent_completed within 500ms for r-2 (step 3)"),
        "{note}"
    );
    assert!(stalled(&[expect(None)], 1, &stall).is_some());
    // An `expect` of a kind named `pong`, uncorrelated: no Ping's Pong.
    let kind = Violation {
        expected: "pong within 500ms".into(),
        ..expect(None)
    };
    assert!(stalled(&[kind], 1, &stall).is_some());

    // A 100 ms `within` at 1.9–2.0 s, stalled through: owed 200 ms of reading, not 100.
    let short = |end| Violation {
        window_ms: Some(100.0),
        ..missed_pong(0, Some(end))
    };
    let whole = one_stall(1900.0, 100.0);
    assert!(stalled(&[short(2150.0)], 1, &whole).is_some());
    assert!(stalled(&[short(2250.0)], 1, &whole).is_none());
}

/// A run whose only violation is a deadline missed in a stall the client caught up on is
/// a run with violations, and its hint says why the stall did not excuse it.
#[test]
fn a_run_whose_caught_up_miss_stands_says_so() {
    let plan = plan();
    let counters = crate::model::Counters {
        messages_sent: 2,
        messages_received: 2,
        json_records: 2,
        ..Default::default()
    };
    let conn = &plan.conns[0];
    let mut r = report(conn, attempt(End::Accepted), counters);
    r.violations = vec![missed_pong(conn.id, Some(2600.0))];
    r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
    let by_oracle: BTreeMap<OracleKind, u64> = [(OracleKind::Completeness, 1)].into();
    let kept = r.violations.clone();
    let j = judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan: &plan,
        reports: &[r],
        by_oracle: &by_oracle,
        coverage: &Coverage::default(),
        stopped: StopReason::Completed,
        stalls: &one_stall(1700.0, 250.0),
        kept: &kept,
        redactor: &Redactor::default(),
        target: TARGET,
    });
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the client caught up and read for 650 ms more"),
        "{hint}"
    );
}

/// A clean run whose script sends something no `expect` follows says what went unjudged
/// (a server that dropped it reads the same); a run with violations does not need to.
#[test]
fn a_clean_verdict_names_the_sends_no_expect_judged() {
    let text = "name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"speakers\"\nusers = 2\n\
                steps = [{ expect = \"welcome\", within = \"1s\" }, { send = { command = \"message\" } }, { close = 1000 }]\n";
    let scenario = crate::scenario::load_str(text, "v.toml").unwrap();
    let plan = crate::plan::build(&scenario, 1);
    let counters = crate::model::Counters {
        messages_sent: 1,
        messages_received: 1,
        ..Default::default()
    };
    let judged = |violations: &[(OracleKind, u64)]| judge_counted_in(&plan, &counters, violations);
    let clean = judged(&[]);
    assert_eq!(clean.verdict, Verdict::Clean);
    let hint = clean.hint.unwrap_or_default();
    assert!(
        hint.contains("what the server does with the send at `speakers` step 2 is not judged"),
        "{hint}"
    );
    let violations = judged(&[(OracleKind::Identity, 1)]);
    assert_eq!(violations.verdict, Verdict::Violations);
    assert!(
        !violations.hint.unwrap_or_default().contains("unjudged"),
        "only a clean verdict carries the note"
    );
}

/// An `expect` step of one kind, uncorrelated.
fn expect_step(kind: &str) -> Step {
    Step::Expect(crate::model::Expect {
        pattern: vec![crate::model::PatternItem {
            event: kind.into(),
            repeat: crate::model::Repeat::One,
        }]
        .into(),
        correlate: None,
        correlate_reply: None,
        earlier_send: 0,
        earlier_send_step: 0,
        within: std::time::Duration::from_secs(1),
        wait: true,
        checks: Vec::new(),
        capture: Vec::new(),
        absent: false,
        name: None,
        pushed: false,
        fresh: false,
    })
}

/// Every upgrade broke on the subprotocol (the server chose none of those offered): the
/// target is unusable, and the hint points at the subprotocols, not at the URL or TLS.
#[test]
fn an_upgrade_that_breaks_on_the_subprotocol_says_to_check_it() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            let mut a = Attempt::new(10);
            a.outcome = Outcome::Failed;
            a.cause = Some(Cause::Protocol);
            let mut r = report(c, a, crate::model::Counters::default());
            r.answer = Some(crate::model::Answer::new(
                Cause::Protocol,
                "SubProtocol error: Server sent no subprotocol".into(),
                b"",
            ));
            r
        })
        .collect();
    let j = judge_completed(&plan, &reports);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains("subprotocols offered"), "{hint}");
    assert!(!hint.contains("TLS trust"), "{hint}");
}

/// Expectations unmet on connections whose buffer of unclaimed messages overflowed are
/// the client's own limit (it dropped what they may have waited for): client-limited,
/// naming the overflow. One unmet on a connection that dropped nothing stands.
#[test]
fn unmet_expectations_where_the_client_dropped_messages_are_its_own_limit() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            let mut counters = crate::model::Counters::default();
            if c.id < 2 {
                counters.expect.buffer_overflows = 10;
                counters.expect.buffer_overflow_bytes = 2_000;
            }
            report(c, attempt(End::Accepted), counters)
        })
        .collect();
    let kept = vec![unmet(0, false), unmet(1, false)];
    let j = overflowed(&plan, &reports, &kept, 2).expect("client limited");
    assert_eq!(j.verdict, Verdict::ClientLimited);
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("dropped 20 messages (4000 bytes)") && hint.contains("max_buffered"),
        "{hint}"
    );
    // Connection 2 dropped nothing: its loss is the server's to answer for.
    let mixed = vec![unmet(0, false), unmet(2, false)];
    assert!(overflowed(&plan, &reports, &mixed, 2).is_none());
    // A violation not kept (its connection unknown): the violations stand.
    assert!(overflowed(&plan, &reports, &kept, 3).is_none());
    // A long burst: each connection kept only its first few of 50, and counted them all
    // as completeness on an overflowing connection: still the client's own limit.
    let counted: Vec<ConnReport> = reports
        .iter()
        .cloned()
        .map(|mut r| {
            if r.id < 2 {
                r.violations_by_oracle.insert(OracleKind::Completeness, 50);
            }
            r
        })
        .collect();
    let j = overflowed(&plan, &counted, &kept, 100).expect("counted, all overflowing");
    assert_eq!(j.verdict, Verdict::ClientLimited);
    // One of them counted on a connection that dropped nothing: they stand.
    let mut stray = counted.clone();
    stray[2]
        .violations_by_oracle
        .insert(OracleKind::Completeness, 1);
    assert!(overflowed(&plan, &stray, &kept, 101).is_none());
}

/// The verdict of a run of `plan` that completed with `reports` and no violation.
#[test]
fn a_shard_that_holds_no_connection_is_inconclusive_not_clean() {
    let mut plan = plan();
    plan.keep_shard(crate::model::Shard { index: 5, count: 6 });
    assert!(
        plan.conns.is_empty(),
        "4 tokens leave shards 4 and 5 of 6 empty"
    );
    let j = judge_completed(&plan, &[]);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("holds none of the plan's connections") && hint.contains("4 token slots"),
        "{hint}"
    );
}

/// Every valid token refused with 401, each after an earlier attempt had presented it (a
/// handshake aborted after its request): a server that takes each token once, which a
/// scenario presenting tokens twice cannot judge. Inconclusive, not a wrong secret; the
/// same refusals on a token's first presentation stay a misconfiguration.
#[test]
fn tokens_refused_only_when_presented_again_are_no_wrong_secret() {
    let plan = plan();
    let reports = |aborted_first: bool| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .take(2)
            .map(|c| {
                let mut refused = attempt(End::Refused(401));
                refused.started_us = 5_000;
                let mut r = report(c, refused, Default::default());
                if aborted_first {
                    r.attempts.insert(0, attempt(End::Aborted));
                }
                r
            })
            .collect()
    };
    let again = judge_completed(&plan, &reports(true));
    assert_eq!(again.verdict, Verdict::Inconclusive, "{again:?}");
    assert!(again
        .hint
        .unwrap_or_default()
        .contains("the server takes each token once"),);
    let first = judge_completed(&plan, &reports(false));
    assert_eq!(first.verdict, Verdict::AuthMisconfigured, "{first:?}");
}

/// A completed run of `reports` with no violation counted.
fn judge_completed(plan: &Plan, reports: &[ConnReport]) -> Judgement {
    judge_completed_by(plan, reports, &BTreeMap::new())
}

/// A completed run of `reports` whose only violations are `unmet` completeness ones.
fn judge_unmet(plan: &Plan, reports: &[ConnReport], unmet: u64) -> Judgement {
    judge_completed_by(plan, reports, &[(OracleKind::Completeness, unmet)].into())
}

fn judge_completed_by(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
) -> Judgement {
    judge_completed_kept(plan, reports, by_oracle, &[])
}

/// A run of `reports` that stopped as `stopped`, with no violation.
fn judge_stopped(plan: &Plan, reports: &[ConnReport], stopped: StopReason) -> Judgement {
    judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan,
        reports,
        by_oracle: &BTreeMap::new(),
        coverage: &Coverage::default(),
        stopped,
        stalls: &ClientStalls::default(),
        kept: &[],
        redactor: &Redactor::default(),
        target: TARGET,
    })
}

/// [`judge_completed_by`] with the run's `kept` violations.
fn judge_completed_kept(
    plan: &Plan,
    reports: &[ConnReport],
    by_oracle: &BTreeMap<OracleKind, u64>,
    kept: &[Violation],
) -> Judgement {
    judge(&Evidence {
        probes: &[],
        correct_reference: false,
        plan,
        reports,
        by_oracle,
        coverage: &Coverage::default(),
        stopped: StopReason::Completed,
        stalls: &ClientStalls::default(),
        kept,
        redactor: &Redactor::default(),
        target: TARGET,
    })
}

/// Expectations whose `within` ran out before their answer came are slowness, not a
/// race: the hint names the deadlines and the latency figures, and sends nobody hunting
/// for a repro of them. Beside a violation of another kind it tells of both; unmet
/// expectations of no deadline (cut by the connection's end) keep the hunt.
/// Connections 0 and 1 of `plan`, accepted, each sent 2 messages and answered with 4 JSON
/// records.
fn answered(plan: &Plan) -> Vec<ConnReport> {
    let counters = crate::model::Counters {
        messages_sent: 2,
        messages_received: 4,
        json_records: 4,
        ..Default::default()
    };
    plan.conns
        .iter()
        .take(2)
        .map(|c| report(c, attempt(End::Accepted), counters.clone()))
        .collect()
}

/// A deadline missed where late answers missed it too, on a connection that ended sooner
/// after it than those answers took (a script that closed right after its last deadline),
/// is no loss to hunt: its answer may have been on its way. One whose connection lived
/// long enough for it, and none came, is.
#[test]
fn a_deadline_missed_just_before_the_connection_ended_is_not_sent_to_a_hunt() {
    let plan = plan();
    let judged = |missed_conn_ended_ms: f64| {
        let reports = answered(&plan);
        let missed = |conn| Violation {
            window_ms: Some(300.0),
            step: Some("3".into()),
            ..unmet(conn, false)
        };
        let kept = [
            Violation {
                late_ms: Some(812.0),
                after_request_ms: None,
                ..missed(0)
            },
            Violation {
                conn_end_ms: Some(missed_conn_ended_ms),
                ..missed(1)
            },
        ];
        let by_oracle = [(OracleKind::Completeness, 2)].into();
        let j = judge_completed_kept(&plan, &reports, &by_oracle, &kept);
        assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
        j.hint.unwrap_or_default()
    };
    // Its wait began at -299 ms; the late answer took 812 ms: it ended before then.
    let cut = judged(400.0);
    assert!(
        cut.contains("every one is an answer that came late")
            && cut.contains("1 more missed the same deadline on a connection that ended sooner")
            && !cut.contains("hunt"),
        "{cut}"
    );
    let lost = judged(5_000.0);
    assert!(
        lost.contains("hunt for a repro of those that are not late answers")
            && !lost.contains("more missed the same deadline"),
        "{lost}"
    );
}

#[test]
fn late_answers_are_slowness_not_a_race_to_hunt() {
    let plan = plan();
    let reports = answered(&plan);
    let missed = |conn| Violation {
        window_ms: Some(300.0),
        step: Some("3".into()),
        ..unmet(conn, false)
    };
    let late = |conn, late_ms| Violation {
        late_ms: Some(late_ms),
        after_request_ms: None,
        ..missed(conn)
    };
    let judged = |kept: &[Violation], by_oracle: &[(OracleKind, u64)]| {
        let j = judge_completed_kept(&plan, &reports, &by_oracle.iter().copied().collect(), kept);
        assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let deadline = "`g` step 3 within 300 ms ×2 (came up to 812 ms after the request)";
    let slow = "slowness, not a race";
    let raise = "raise `within` if it is stricter than the server's objective";

    let all = judged(
        &[late(0, 450.0), late(1, 812.0)],
        &[(OracleKind::Completeness, 2)],
    );
    assert!(
        all.contains("every one is an answer that came late")
            && all.contains(deadline)
            && all.contains(slow)
            && all.contains(raise),
        "{all}"
    );
    assert!(!all.contains("hunt for a repro"), "{all}");

    let served_twice = Violation {
        oracle: OracleKind::Exclusivity,
        ..unmet(1, false)
    };
    let both = judged(
        &[late(0, 450.0), late(1, 812.0), served_twice],
        &[(OracleKind::Completeness, 2), (OracleKind::Exclusivity, 1)],
    );
    assert!(
        both.contains("hunt for a repro of those that are not late answers")
            && both.contains("2 are answers that came late")
            && both.contains(deadline)
            && both.contains(raise),
        "{both}"
    );

    // A deadline that ran out on an answer that never came is a loss: hunt for it.
    let lost = judged(&[missed(0), missed(1)], &[(OracleKind::Completeness, 2)]);
    assert!(
        lost.ends_with("; hunt for a repro") && !lost.contains("slowness"),
        "{lost}"
    );
    let cut = judged(&[unmet(0, false)], &[(OracleKind::Completeness, 1)]);
    assert!(
        cut.ends_with("; hunt for a repro") && !cut.contains("late"),
        "{cut}"
    );
}

/// Late answers that each came only after their connection's next request: a server one
/// request behind when the same deadline's answer never came on a connection that outlived
/// them (no slowness, a hunt); said beside the slowness when that proof is missing (the
/// connection ended first), and not at all when one late answer came before any later
/// request (a slow server answers whenever it is done).
#[test]
fn late_answers_each_after_the_next_request_are_one_behind_when_the_last_never_came() {
    let plan = plan();
    let reports = answered(&plan);
    let missed = |conn, ended_ms| Violation {
        window_ms: Some(300.0),
        step: Some("3".into()),
        conn_end_ms: Some(ended_ms),
        ..unmet(conn, false)
    };
    let late = |conn, after_request_ms| Violation {
        late_ms: Some(302.0),
        after_request_ms,
        conn_end_ms: None,
        ..missed(conn, 0.0)
    };
    let judged = |kept: &[Violation]| {
        let by_oracle = [(OracleKind::Completeness, kept.len() as u64)].into();
        let j = judge_completed_kept(&plan, &reports, &by_oracle, kept);
        assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
        j.hint.unwrap_or_default()
    };
    // The last request's wait began at -299 ms (its deadline at 1 ms), the late answers
    // took 302 ms; its connection lived to 3,000.
    let behind = judged(&[late(0, Some(2.0)), late(1, Some(1.5)), missed(0, 3_000.0)]);
    assert!(
        behind.contains("2 are answers that came late, each only after their connections' next request went out (at most 2 ms after it)")
            && behind.contains("and 1 never came though its connection stayed open longer")
            && behind.contains("one request behind")
            && behind.contains("a loss either way")
            && !behind.contains("slowness")
            && behind.ends_with("; hunt for a repro"),
        "{behind}"
    );
    // Its connection ended 301 ms after the wait began: not proven lost.
    let unproven = judged(&[late(0, Some(2.0)), late(1, Some(1.5)), missed(0, 2.0)]);
    assert!(
        unproven.contains("slowness, not a race")
            && unproven.contains("each came only after its connection's next request went out (at most 2 ms after it): a server that answers one request behind reads the same"),
        "{unproven}"
    );
    let slow = judged(&[late(0, Some(2.0)), late(1, None), missed(0, 3_000.0)]);
    assert!(
        slow.contains("slowness, not a race") && !slow.contains("behind"),
        "{slow}"
    );
    // One came 100 ms after the next request, a third of the 300 ms it missed: a slow
    // answer that happened to follow it, not one held for it.
    let slow = judged(&[late(0, Some(100.0)), late(1, Some(1.5)), missed(0, 3_000.0)]);
    assert!(
        slow.contains("slowness, not a race") && !slow.contains("behind"),
        "{slow}"
    );
}

/// Every valid token's connection turned away by an answer that names the subprotocol (a
/// Close 1008 after the upgrade, "unsupported subprotocol"; an HTTP 400 whose body says
/// which one is required): the offer is what to check, not the signing secret or the URL.
/// The same 1008 with a reason about the token stays a misconfiguration.
#[test]
fn a_refusal_naming_the_subprotocol_says_to_check_it_not_the_secret() {
    let plan = plan();
    let refused = |end: End, cause: Cause, detail: &str, reason: &[u8]| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .take(2)
            .map(|c| {
                let mut r = report(c, attempt(end), Default::default());
                r.answer = Some(crate::model::Answer::new(
                    cause.clone(),
                    detail.into(),
                    reason,
                ));
                r
            })
            .collect()
    };
    let closed = judge_completed(
        &plan,
        &refused(
            End::RefusedAfterUpgrade(1008),
            Cause::ServerClose(1008),
            "Close 1008",
            b"unsupported subprotocol",
        ),
    );
    let http = judge_completed(
        &plan,
        &refused(
            End::Refused(400),
            Cause::Http(400),
            "HTTP/1.1 400 Bad Request",
            b"subprotocol chat.v1 required; offer it in Sec-WebSocket-Protocol",
        ),
    );
    for j in [closed, http] {
        assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
        let hint = j.hint.unwrap_or_default();
        assert!(hint.contains("subprotocols offered"), "{hint}");
        assert!(
            !hint.contains("signing secret") && !hint.contains("check the URL"),
            "{hint}"
        );
    }
    let token = judge_completed(
        &plan,
        &refused(
            End::RefusedAfterUpgrade(1008),
            Cause::ServerClose(1008),
            "Close 1008",
            b"invalid token for subprotocol auth",
        ),
    );
    assert_eq!(token.verdict, Verdict::AuthMisconfigured, "{token:?}");
}

/// The server closed every connection at once saying it was going down (1001 "server
/// restarting", 1012 service restart) and cut what they expected: a restart mid-run,
/// inconclusive, never a race. The same closes far apart in time, a close with another
/// code, or a 1001 whose reason says nothing of going down (an idle timer) stay
/// violations.
#[test]
fn expectations_cut_by_a_server_going_down_all_at_once_are_inconclusive() {
    let plan = plan();
    let judged_why =
        |ends: [(u16, f64); 2], why: &[u8]| judge_unmet(&plan, &going_down(&plan, ends, why), 2);
    let judged = |ends: [(u16, f64); 2]| judged_why(ends, b"server restarting (deploy)");
    for code in [1001, 1012] {
        let j = judged([(code, 2_000.0), (code, 2_000.3)]);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains("the server closed 2 connections within 0 ms saying it was going down")
                && hint.contains(&format!(
                    "Close {code}, reason \"server restarting (deploy)\""
                ))
                && hint.contains("not a race"),
            "{hint}"
        );
    }
    assert_eq!(
        judged([(1001, 2_000.0), (1001, 9_000.0)]).verdict,
        Verdict::Violations
    );
    assert_eq!(
        judged([(1001, 2_000.0), (1000, 2_000.1)]).verdict,
        Verdict::Violations
    );
    let idle = judged_why([(1001, 2_000.0), (1001, 2_000.1)], b"idle timeout");
    assert_eq!(idle.verdict, Verdict::Violations);
    let restart = judged_why([(1012, 2_000.0), (1012, 2_000.1)], b"");
    assert_eq!(restart.verdict, Verdict::Inconclusive);
}

/// A lone connection the server told it was restarting is a restart too, when no other
/// connection was served through that close: a one-connection run, or one whose other
/// connections were done. Another connection served after it makes it a fault of its own.
#[test]
fn a_lone_connection_told_the_server_restarts_is_inconclusive_unless_others_were_served() {
    let plan = plan();
    let mut reports = going_down(&plan, [(1012, 2_000.0), (1012, 2_000.0)], b"");
    let mut other = reports.remove(1);
    other.violations.clear();
    other.violations_by_oracle.clear();
    other.closed_after_acceptance = None;
    let judged = |last_frame_ms: u64, other: &ConnReport| {
        let mut other = other.clone();
        other.attempts[0].cause = Some(Cause::ClientClose(1000));
        other.attempts[0].last_frame_us = Some(last_frame_ms * 1000);
        judge_unmet(&plan, &[reports[0].clone(), other], 1)
    };
    let done_before = judged(1_500, &other);
    assert_eq!(
        done_before.verdict,
        Verdict::Inconclusive,
        "{done_before:?}"
    );
    let hint = done_before.hint.unwrap_or_default();
    assert!(
        hint.contains("the server closed the one connection it had open saying it was going down (Close 1012)"),
        "{hint}"
    );
    let served_after = judged(2_500, &other);
    assert_eq!(
        served_after.verdict,
        Verdict::Violations,
        "{served_after:?}"
    );
    let alone = judge_unmet(&plan, &reports, 1);
    assert_eq!(alone.verdict, Verdict::Inconclusive, "{alone:?}");
}

/// A bare 1001 (going away, no reason: Python `websockets` stopping on SIGTERM) that
/// closed two connections at once is the server going down, inconclusive; the same close
/// of a lone connection, or of two far apart in time, says nothing of a restart and
/// stays a violation, as does a 1001 whose reason says something else.
#[test]
fn a_bare_going_away_closing_many_at_once_is_the_server_going_down() {
    let plan = plan();
    let judged =
        |ends: [(u16, f64); 2], why: &[u8]| judge_unmet(&plan, &going_down(&plan, ends, why), 2);
    let j = judged([(1001, 2_000.0), (1001, 2_000.001)], b"");
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("closed 2 connections within 0 ms going away all at once")
            && hint.contains("(Close 1001)")
            && hint.contains("not a race"),
        "{hint}"
    );
    let spread = judged([(1001, 2_000.0), (1001, 9_000.0)], b"");
    assert_eq!(spread.verdict, Verdict::Violations, "{spread:?}");
    let idle = judged([(1001, 2_000.0), (1001, 2_000.001)], b"idle timeout");
    assert_eq!(idle.verdict, Verdict::Violations, "{idle:?}");
    // A lone connection, no other served through its close: a 1012 would be a restart,
    // a bare 1001 is not.
    let mut lone = going_down(&plan, [(1001, 2_000.0), (1001, 2_000.0)], b"");
    lone.truncate(1);
    let j = judge_unmet(&plan, &lone, 1);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// A restart closes idle connections too: the hint counts every connection the server
/// told it was going down at that moment, and those with answers pending among them; one
/// cut expectation beside another connection closed the same way is a restart, not a
/// lone close.
#[test]
fn a_restart_counts_the_idle_connections_it_closed_too() {
    let plan = plan();
    let restarting = b"server restarting";
    let idle_closed = |conn: usize, at_ms: u64| {
        let mut closed = attempt(End::Accepted);
        closed.cause = Some(Cause::ServerClose(1012));
        closed.ended_us = Some(at_ms * 1000);
        let mut r = report(&plan.conns[conn], closed, Default::default());
        r.closed_after_acceptance = Some(crate::model::Answer::new(
            Cause::ServerClose(1012),
            "Close 1012".into(),
            restarting,
        ));
        r
    };
    let mut reports = going_down(&plan, [(1012, 2_000.0), (1012, 2_000.2)], restarting);
    reports.push(idle_closed(2, 2_001));
    let j = judge_unmet(&plan, &reports, 2);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("closed 3 connections within 0 ms, 2 of them with answers pending"),
        "{hint}"
    );
    // One cut, one idle closed with it: a restart. Closed a minute later: not with it.
    let one_cut = |idle_at_ms| {
        let mut reports = going_down(&plan, [(1012, 2_000.0), (1012, 2_000.0)], restarting);
        reports.truncate(1);
        reports.push(idle_closed(1, idle_at_ms));
        // The idle one was served after the cut one's close, until its own.
        reports[1].attempts[0].last_frame_us = Some(idle_at_ms * 1000 - 1);
        judge_unmet(&plan, &reports, 1)
    };
    assert_eq!(one_cut(2_300).verdict, Verdict::Inconclusive);
    assert_eq!(one_cut(62_000).verdict, Verdict::Violations);
}

/// Connections 0 and 1 of `plan`, each accepted, answered, then closed by the server with
/// its `(code, at_ms)` of `ends` and the reason `why`, which cut one expectation of each.
fn going_down(plan: &Plan, ends: [(u16, f64); 2], why: &[u8]) -> Vec<ConnReport> {
    plan.conns
        .iter()
        .zip(ends)
        .map(|(c, (code, at_ms))| {
            let mut r = ended_unmet(c, at_ms, Cause::ServerClose(code), Some(code));
            r.closed_after_acceptance = Some(crate::model::Answer::new(
                Cause::ServerClose(code),
                format!("Close {code}"),
                why,
            ));
            r
        })
        .collect()
}

/// Connection `c`, accepted and answered (3 messages each way), its attempt then ended by
/// `cause` at `at_ms`, which cut one expectation: its stream ended with `close_code`.
fn ended_unmet(
    c: &crate::model::ConnPlan,
    at_ms: f64,
    cause: Cause,
    close_code: Option<u16>,
) -> ConnReport {
    let counters = crate::model::Counters {
        messages_sent: 3,
        messages_received: 3,
        json_records: 3,
        ..Default::default()
    };
    let mut ended = attempt(End::Accepted);
    ended.cause = Some(cause);
    let mut r = report(c, ended, counters);
    r.violations = vec![Violation {
        at_ms,
        ended: Some(crate::model::StreamEnded {
            close_code,
            answered: false,
        }),
        ..unmet(c.id, false)
    }];
    r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
    r
}

/// HTTP 503s in a run the server restarted during are its restart, not load shedding:
/// the hint says they were refused while it was restarting. A 429 beside them is still
/// shed under load, and the same 503 in a run judged otherwise is shed as ever.
#[test]
fn service_unavailable_during_a_restart_is_no_load_shedding() {
    let plan = plan();
    let judged = |ends: [(u16, f64); 2]| {
        let mut reports = going_down(&plan, ends, b"");
        for (c, status) in plan.conns.iter().skip(2).zip([503, 429]) {
            reports.push(report(c, attempt(End::Refused(status)), Default::default()));
        }
        judge_unmet(&plan, &reports, 2)
    };
    let restart = judged([(1012, 2_000.0), (1012, 2_000.1)]);
    assert_eq!(restart.verdict, Verdict::Inconclusive, "{restart:?}");
    let hint = restart.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "the server refused 1 of 4 attempts with HTTP 503 (service unavailable) while it \
             was going down or restarting: not load shedding"
        ) && hint.contains("the server shed 1 of 4 attempts under load (http_429 ×1)"),
        "{hint}"
    );
    assert!(!hint.contains("http_503"), "{hint}");

    let apart = judged([(1012, 2_000.0), (1012, 9_000.0)]);
    assert_eq!(apart.verdict, Verdict::Violations, "{apart:?}");
    let hint = apart.hint.unwrap_or_default();
    assert!(
        hint.contains("the server shed 2 of 4 attempts under load (http_429 ×1, http_503 ×1)")
            && !hint.contains("restarting"),
        "{hint}"
    );
}

/// A run where nothing broke but some valid-token connections never ran their scripts is
/// no clean run: attempts that got no answer from the server (a refused or reset TCP
/// connection, an upgrade that timed out, a failed login), and reconnects refused as
/// "who are you" after the server had accepted the connection once. Failures that are the
/// client's own limits, and forged tokens turned away, leave it clean.
#[test]
fn valid_connections_that_never_ran_their_scripts_leave_no_clean_run() {
    let plan = plan();
    let judged = |second: Vec<Attempt>| {
        let mut reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| report(c, attempt(End::Accepted), Default::default()))
            .collect();
        reports[1].attempts = second;
        // A forged token refused, as it should be.
        reports[2].attempts = vec![attempt(End::Refused(401))];
        judge_completed(&plan, &reports)
    };
    for (how, shown) in [
        (Cause2::Refused, "connect_refused"),
        (Cause2::Reset, "reset"),
        (Cause2::Timeout, "timeout_upgrade"),
        (Cause2::Login, "login_failed"),
    ] {
        let j = judged(vec![attempt(End::Failed(how))]);
        assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
        let hint = j.hint.unwrap_or_default();
        assert!(
            hint.contains("1 of 2 valid-token connection attempts got no answer")
                && hint.contains(shown),
            "{hint}"
        );
    }
    // A Close before acceptance with a code the scenario does not declare is an answer,
    // not silence (Pusher's 4100 "Over capacity").
    let mut closed = attempt(End::RefusedAfterUpgrade(4100));
    closed.outcome = Outcome::Failed;
    let j = judged(vec![closed]);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the server closed 1 of 2 valid-token connection attempts before accepting them (server_close_4100 ×1)"),
        "{hint}"
    );
    assert!(!hint.contains("got no answer"), "{hint}");
    let mut reconnect = attempt(End::Refused(401));
    reconnect.started_us = 5_000;
    let j = judged(vec![attempt(End::Accepted), reconnect]);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("1 reconnect of connections the server had accepted was refused"),
        "{hint}"
    );
    // The client's own limit is said otherwise; every valid connection served is clean.
    let own = judged(vec![attempt(End::Failed(Cause2::Ports))]);
    assert_ne!(own.verdict, Verdict::Inconclusive, "{own:?}");
    let served = judged(vec![attempt(End::Accepted)]);
    assert_eq!(served.verdict, Verdict::Clean, "{served:?}");
}

/// A run Ctrl-C stopped before its load: the hint says nothing was exercised and names
/// no `learned.toml`, which this run may not have written (`--no-learn`, a `--workers`
/// merge); the run adds the file's name where it writes one.
#[test]
fn interrupted_before_the_load_names_no_learned_file() {
    let plan = plan();
    let j = judge_stopped(&plan, &[], StopReason::Interrupted);
    assert_eq!(j.verdict, Verdict::Incomplete);
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains("before the load started"), "{hint}");
    assert!(!hint.contains("learned.toml"), "{hint}");
}

/// Connections the server closed, and reconnects it refused, after their token expired
/// ([`Attempt::token_expired`]) are the scenario's own `ttl` running out: no clean run,
/// nor a server that takes each token once, but inconclusive, the hint counting them and
/// saying what to change. Beside a real violation the run stays a finding, and the note
/// is said once.
#[test]
fn ends_after_the_token_expired_leave_the_run_inconclusive() {
    let plan = plan();
    let mut reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), Default::default()))
        .collect();
    let mut closed = attempt(End::Accepted);
    closed.cause = Some(Cause::ServerClose(4001));
    closed.token_expired = true;
    let mut reconnect = attempt(End::Refused(401));
    reconnect.started_us = 5_000;
    reconnect.token_expired = true;
    reports[1].attempts = vec![closed, reconnect];
    // A forged token refused, as it should be.
    reports[2].attempts = vec![attempt(End::Refused(401))];
    let said = "the server closed 1 connection and refused 1 reconnect after their token \
                expired (ttl 600s): raise [auth] ttl or shorten the script";
    let j = judge_completed(&plan, &reports);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains(said), "{hint}");
    assert!(!hint.contains("who are you"), "{hint}");
    let found = judge_completed_by(&plan, &reports, &[(OracleKind::Liveness, 1)].into());
    assert_eq!(found.verdict, Verdict::Violations, "{found:?}");
    let hint = found.hint.unwrap_or_default();
    assert_eq!(hint.matches(said).count(), 1, "{hint}");
}

/// An accepted attempt the server closed with `code` when it had been open `age_ms`.
fn closed_at_age(code: u16, age_ms: u64) -> Attempt {
    let mut a = attempt(End::Accepted);
    a.cause = Some(Cause::ServerClose(code));
    a.close_age_us = Some(age_ms * 1000);
    a.ended_us = a.upgraded_us.map(|u| u + age_ms * 1000);
    a
}

/// `a`, closed mid-script after `idle_ms` with neither side sending and no answer owed.
fn silent_for(mut a: Attempt, idle_ms: u64) -> Attempt {
    a.idle_close_us = Some(idle_ms * 1000);
    a
}

/// The plan's four connections: the valid ones (0 and 1) end as `valid` says, the forged
/// ones are refused with 401, as they should be.
fn valid_ending(plan: &Plan, valid: [Attempt; 2]) -> Vec<ConnReport> {
    let mut reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Refused(401)), Default::default()))
        .collect();
    for (r, a) in reports.iter_mut().zip(valid) {
        r.attempts = vec![a];
    }
    reports
}

/// Connections the server closed at the declared `[oracles] max_lifetime`
/// ([`Attempt::closed_at_lifetime`]) are its policy, and declared: no violation, no
/// inconclusive run, and the hint counts them.
#[test]
fn closes_at_the_declared_lifetime_leave_the_run_clean_and_counted() {
    let mut plan = plan();
    plan.oracles.max_lifetime = Some(std::time::Duration::from_secs(1));
    let at_lifetime = || {
        let mut a = closed_at_age(1001, 995);
        a.closed_at_lifetime = true;
        a
    };
    let reports = valid_ending(&plan, [at_lifetime(), at_lifetime()]);
    let j = judge_completed(&plan, &reports);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "2 connections closed at the declared `max_lifetime = \"1s\"` (open 1.0 s; \
             server_close_1001 ×2): the server's connection lifetime policy"
        ),
        "{hint}"
    );
    assert!(!hint.contains("declare [oracles]"), "{hint}");
}

/// Undeclared, closes at about the same age are findings as before, and the hint says
/// how to declare them; closes at ages far apart, a lone one, a fault's code, or one
/// while another connection outlived that age suggest nothing.
#[test]
fn closes_at_one_age_suggest_declaring_max_lifetime() {
    let plan = plan();
    let judged = |valid: [Attempt; 2]| judge_unmet(&plan, &valid_ending(&plan, valid), 2);
    let j = judged([closed_at_age(1001, 29_970), closed_at_age(1000, 29_990)]);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "the server closed 2 connections at ~30s of age (server_close_1000 ×1, \
             server_close_1001 ×1) mid-script: if that is its policy (a maximum connection \
             lifetime), declare [oracles] max_lifetime = \"30s\""
        ),
        "{hint}"
    );
    // Silences unlike each other before closes at one age: the age, not a silence.
    let j = judged([
        silent_for(closed_at_age(1001, 29_970), 1_200),
        silent_for(closed_at_age(1000, 29_990), 6_000),
    ]);
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("declare [oracles] max_lifetime = \"30s\""),
        "{hint}"
    );
    let mut outlived = attempt(End::Accepted);
    outlived.ended_us = Some(60_000_000);
    for (valid, why) in [
        (
            [closed_at_age(1001, 10_000), closed_at_age(1001, 30_000)],
            "ages apart",
        ),
        (
            [closed_at_age(1001, 30_000), attempt(End::Accepted)],
            "a lone close",
        ),
        (
            [closed_at_age(1011, 30_000), closed_at_age(1011, 30_000)],
            "a fault",
        ),
        (
            [closed_at_age(1001, 400), closed_at_age(1001, 400)],
            "too young",
        ),
        ([closed_at_age(1001, 30_000), outlived], "outlived"),
        (
            [
                silent_for(closed_at_age(1000, 3_500), 1_500),
                silent_for(closed_at_age(1000, 3_510), 1_500),
            ],
            "each after the same silence: an idle timeout's doing",
        ),
    ] {
        let hint = judged(valid).hint.unwrap_or_default();
        assert!(!hint.contains("max_lifetime"), "{why}: {hint}");
    }
}

/// Declared, a close sooner than the lifetime stays a finding, and the hint says why.
#[test]
fn closes_before_the_declared_lifetime_stay_findings() {
    let mut plan = plan();
    plan.oracles.max_lifetime = Some(std::time::Duration::from_secs(5));
    let reports = valid_ending(
        &plan,
        [closed_at_age(1001, 995), closed_at_age(1001, 1_010)],
    );
    let j = judge_unmet(&plan, &reports, 2);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "the server closed 2 connections at only 1.0 s of age (server_close_1001 ×2), \
             sooner than the declared `max_lifetime = \"5s\"`: not its lifetime policy"
        ),
        "{hint}"
    );
}

/// A close code the scenario lists in `reject.close` is how it says the server refuses a
/// token (Discord's 4004 "Authentication failed", Centrifugo's 3500 "invalid token"):
/// every valid token refused with it is a wrong secret, never the liveness violations its
/// refusals also count. Listed as shedding instead, the same code says "not now".
#[test]
fn every_valid_token_refused_with_a_declared_close_code_is_auth_misconfigured() {
    let judged = |close: Vec<u16>, shed: Vec<u16>, violations: u64| {
        let mut plan = plan();
        plan.oracles.session.reject.close = close;
        plan.oracles.session.reject.shed = shed;
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut a = attempt(End::RefusedAfterUpgrade(4004));
                a.declared_shed = plan.oracles.session.reject.shed.contains(&4004);
                report(c, a, Default::default())
            })
            .collect();
        let by_oracle = BTreeMap::from([(OracleKind::Liveness, violations)]);
        judge_completed_by(&plan, &reports, &by_oracle)
    };
    let declared = judged(vec![4004], Vec::new(), 2);
    assert_eq!(declared.verdict, Verdict::AuthMisconfigured, "{declared:?}");
    let hint = declared.hint.unwrap_or_default();
    assert!(hint.contains("server_close_4004 ×2"), "{hint}");
    assert!(hint.contains("check the signing secret"), "{hint}");
    // Undeclared, the code is no known refusal: the door's verdict, never a race.
    let undeclared = judged(vec![1008], Vec::new(), 2);
    assert_ne!(
        undeclared.verdict,
        Verdict::AuthMisconfigured,
        "{undeclared:?}"
    );
    assert_ne!(undeclared.verdict, Verdict::Violations, "{undeclared:?}");
    // Shed, it refuses nobody's token (and breaks no session oracle).
    let shed = judged(vec![4004], vec![4004], 0);
    assert!(
        matches!(
            shed.verdict,
            Verdict::Inconclusive | Verdict::TargetUnusable
        ),
        "{shed:?}"
    );
}

/// No connection accepted under `accepted = { message = "connected" }`, though the server
/// spoke JSON of some kind on every valid one until its script closed it (a kind rule
/// misspelled: `has = "connected"` where the server's welcome carries `connect`): the
/// scenario cannot read the welcome. Unreadable, its hint quoting the rule; never a target
/// that refused. A server that said nothing, or only kindless records, is not this.
#[test]
fn a_welcome_no_kind_rule_matches_is_unreadable_and_names_the_rule() {
    let mut plan = plan();
    plan.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "connected".into(),
    };
    plan.oracles.kinds = vec![crate::model::KindSpec {
        name: "connected".into(),
        when: vec![crate::model::FieldTest {
            path: "connected".into(),
            test: crate::model::Test::Present,
        }],
    }];
    let judged_refusing = |spoke: bool, kinds: bool, refused: bool| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut a = unaccepted(Some(Cause::ClientClose(1000)));
                a.last_frame_us = spoke.then_some(30);
                if refused && c.id % 2 == 1 {
                    // A single-session server turning away the token's second connection.
                    a.outcome = Outcome::Rejected;
                    a.cause = Some(Cause::ServerClose(4409));
                }
                let mut counters = crate::model::Counters {
                    json_records: u64::from(spoke),
                    kindless_records: u64::from(spoke && !kinds),
                    ..Default::default()
                };
                // The greeting the scripts did get, under the kind the server sends.
                counters.expect.events.insert(
                    "connect".into(),
                    crate::model::Tally {
                        expected: 1,
                        arrived: u64::from(spoke),
                    },
                );
                report(c, a, counters)
            })
            .collect();
        judge_run(&plan, &reports, &[])
    };
    let judged = |spoke: bool, kinds: bool| judged_refusing(spoke, kinds, false);
    // However the server spoke, a run that accepted no connection is never clean.
    for spoke in [false, true] {
        for kinds in [false, true] {
            for refused in [false, true] {
                let j = judged_refusing(spoke, kinds, refused);
                assert_ne!(
                    j.verdict,
                    Verdict::Clean,
                    "{spoke} {kinds} {refused}: {j:?}"
                );
            }
        }
    }
    // Some of them refused by the server: the rest accepted nothing all the same (this
    // read CLEAN, 0 connections accepted).
    let refusing = judged_refusing(true, true, true);
    assert_eq!(refusing.verdict, Verdict::Unreadable, "{:?}", refusing.hint);
    let typo = judged(true, true);
    assert_eq!(typo.verdict, Verdict::Unreadable, "{:?}", typo.hint);
    let hint = typo.hint.unwrap_or_default();
    assert!(
        hint.contains("never with \"connected\"")
            && hint.contains("its `[oracles.kinds]` rule: connected present")
            && hint.contains("(did you mean \"connect\"? it arrived)"),
        "{hint}"
    );
    for (spoke, kinds) in [(false, true), (true, false)] {
        let other = judged(spoke, kinds);
        assert!(
            !other
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("never with \"connected\""),
            "{other:?}"
        );
    }
}

/// Valid-token connections the server closed before accepting them, right after a
/// message, while the scenario declares no refusal message: the violations say so, with
/// the message's kind to declare (subscriptions-transport-ws's `connection_error`, then
/// Close 1011, to a token whose session is already active). Declared, no such note.
#[test]
fn an_undeclared_refusal_in_band_of_some_connections_is_named_with_its_declaration() {
    let judged_with = |declared: bool, kind_declared: bool| {
        let mut plan = plan();
        if declared {
            plan.oracles.session.reject.message = Some("connection_error".into());
        }
        if kind_declared {
            plan.oracles.kinds = vec![crate::model::KindSpec {
                name: "connection_error".into(),
                when: vec![crate::model::FieldTest {
                    path: "type".into(),
                    test: crate::model::Test::Equals("connection_error".into()),
                }],
            }];
        }
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                if c.token != 0 {
                    return report(c, attempt(End::Accepted), Default::default());
                }
                let mut a = attempt(End::RefusedAfterUpgrade(1011));
                a.outcome = Outcome::Failed;
                let mut r = report(c, a, Default::default());
                r.said_before_close = Some(
                    r#"{"type":"connection_error","payload":{"message":"session already active"}}"#
                        .into(),
                );
                r
            })
            .collect();
        judge_unmet(&plan, &reports, 1)
    };
    let judged = |declared: bool| judged_with(declared, false);
    let undeclared = judged(false);
    assert_eq!(undeclared.verdict, Verdict::Violations, "{undeclared:?}");
    let hint = undeclared.hint.unwrap_or_default();
    assert!(
        hint.contains("the server closed 1 valid-token connection before accepting it right after saying {\"type\":\"connection_error\"")
            && hint.contains("`[oracles.kinds] refused = { type = \"connection_error\" }` and `[oracles] reject = { message = \"refused\" }`"),
        "{hint}"
    );
    let declared = judged(true);
    assert!(
        !declared
            .hint
            .unwrap_or_default()
            .contains("right after saying"),
        "declared"
    );
    // A kind the scenario declares already needs only naming.
    let hint = judged_with(false, true).hint.unwrap_or_default();
    assert!(
        hint.contains("(`[oracles] reject = { message = \"connection_error\" }`)"),
        "{hint}"
    );
}

/// Unmet expectations beside records the scenario cannot read are unreadable, unless the
/// server closed those connections in a way that reads as rate limiting: its limit's own
/// error record (`{"type":"error","message":"rate limit exceeded"}`, no `channel`) is
/// then what went unread, and the rate limit, not the reading, is what the verdict says.
#[test]
fn a_rate_limit_close_beside_unread_records_is_said_as_rate_limiting() {
    let plan = plan();
    let judged = |reason: &str| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .map(|c| {
                let counters = crate::model::Counters {
                    messages_sent: 3,
                    messages_received: 3,
                    json_records: 3,
                    kindless_records: 1,
                    ..Default::default()
                };
                let mut a = attempt(End::Accepted);
                a.cause = Some(Cause::ServerClose(1008));
                let mut r = report(c, a, counters);
                r.closed_after_acceptance = Some(crate::model::Answer::new(
                    Cause::ServerClose(1008),
                    "Close 1008".into(),
                    reason.as_bytes(),
                ));
                r.violations = vec![Violation {
                    unreadable: true,
                    ..unmet(c.id, false)
                }];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        judge_unmet(&plan, &reports, 2)
    };
    let limited = judged("rate limit exceeded");
    assert_eq!(limited.verdict, Verdict::Violations, "{limited:?}");
    let hint = limited.hint.unwrap_or_default();
    assert!(hint.contains("reads as rate limiting"), "{hint}");
    let other = judged("bye");
    assert_eq!(other.verdict, Verdict::Unreadable, "{other:?}");
}

/// Exclusivity broken by a server that served at most three connections of a token at
/// once and turned away the fourth, which came while three were live: a per-token cap by
/// design reads so, and the hint says how to declare it. A server that served all four
/// shows no cap.
#[test]
fn a_cap_the_server_holds_is_named_beside_exclusivity() {
    let judged_apart = |fourth_accepted: bool, gap_us: u64| {
        let mut plan = plan();
        for c in &mut plan.conns {
            c.token = 0;
        }
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let start = 10 + gap_us * i as u64;
                let mut a = Attempt::new(start);
                a.upgraded_us = Some(start + 2);
                if i < 3 || fourth_accepted {
                    a.accepted_us = Some(start + 3);
                    a.outcome = Outcome::Accepted;
                    a.cause = Some(Cause::ClientClose(1000));
                    a.ended_us = Some(1_000_000);
                } else {
                    a.outcome = Outcome::Failed;
                    a.cause = Some(Cause::ServerClose(1008));
                    a.ended_us = Some(start + 5);
                }
                report(c, a, Default::default())
            })
            .collect();
        let by_oracle = BTreeMap::from([(OracleKind::Exclusivity, 1)]);
        judge_completed_by(&plan, &reports, &by_oracle)
    };
    let judged = |fourth_accepted: bool| judged_apart(fourth_accepted, 10);
    let capped = judged(false);
    assert_eq!(capped.verdict, Verdict::Violations, "{capped:?}");
    let hint = capped.hint.unwrap_or_default();
    assert!(
        hint.contains("served at most 3 connections of a token at once")
            && hint.contains("`[oracles] exclusive = { max_live = 3 }`"),
        "{hint}"
    );
    assert!(!hint.contains("turned none away"), "{hint}");
    // All four served at once, none turned away, opened 100 ms apart: no cap, and
    // possibly a policy of no limit at all, which the hint says how to state.
    let all = judged_apart(true, 100_000);
    let hint = all.hint.unwrap_or_default();
    assert!(!hint.contains("served at most"), "no cap: {hint}");
    assert!(
        hint.contains("up to 4 of one token at once, and turned none away")
            && hint.contains("([oracles] exclusive = false, or { max_live = 4 })"),
        "{hint}"
    );
    // Opened all at once: a check-then-act race whose checks all came first turns none
    // away either; the hint says so, and does not offer the limit as the policy.
    let burst = judged(true).hint.unwrap_or_default();
    assert!(
        burst.contains(
            "a token's connections all began within 1 ms of each other, inside the window of \
             a handshake race"
        ) && burst.contains("more than 50 ms apart (a longer `ramp`)")
            && !burst.contains("exclusive = false"),
        "{burst}"
    );
}

/// Every accepted connection closed by the server with one application code after the
/// script sent on it, nothing it expects past its greeting answered: the server refuses
/// what the script sends (Twitch's 4001 "client sent inbound traffic"), target unusable
/// with the code and the reason. One connection closed otherwise leaves the losses
/// standing, and so does a close that reads as rate limiting.
#[test]
fn every_connection_closed_alike_after_its_send_refuses_the_script() {
    let plan = plan();
    let judged = |codes: &[(u16, &str)]| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .zip(codes)
            .map(|(c, (code, reason))| {
                let counters = crate::model::Counters {
                    messages_sent: 1,
                    messages_received: 1,
                    json_records: 1,
                    ..Default::default()
                };
                let mut a = attempt(End::Accepted);
                a.cause = Some(Cause::ServerClose(*code));
                let mut r = report(c, a, counters);
                r.closed_after_acceptance = Some(crate::model::Answer::new(
                    Cause::ServerClose(*code),
                    format!("Close {code}"),
                    reason.as_bytes(),
                ));
                r.violations = vec![unmet(c.id, false)];
                r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
                r
            })
            .collect();
        judge_unmet(&plan, &reports, codes.len() as u64)
    };
    let inbound = (4001, "client sent inbound traffic");
    let refused = judged(&[inbound, inbound]);
    assert_eq!(refused.verdict, Verdict::TargetUnusable, "{refused:?}");
    let hint = refused.hint.unwrap_or_default();
    assert!(
        hint.starts_with(
            "the server closed every connection it accepted (2) with 4001 (\"client sent \
             inbound traffic\") after the script sent on it"
        ),
        "{hint}"
    );
    // 1011 is the server failing on every request, not refusing the script: violations,
    // pointing at its log first, and claiming no more than this run showed (a fault on
    // every connection of one run may still take its load).
    let failed = judged(&[(1011, ""), (1011, "")]);
    assert_eq!(failed.verdict, Verdict::Violations, "{failed:?}");
    let hint = failed.hint.unwrap_or_default();
    assert!(
        hint.starts_with("the server failed every connection it accepted (2) with 1011")
            && hint.contains("which its log explains")
            && hint.contains("a repro shows (hunt, then shrink)")
            && !hint.contains("no race to hunt"),
        "{hint}"
    );
    // An auth code after acceptance is the ack-before-ready race's, judged as violations.
    for codes in [
        [inbound, (4002, "other")],
        [(4029, "rate limit exceeded"); 2],
        [(4401, "Unauthorized"); 2],
    ] {
        let j = judged(&codes);
        assert_ne!(j.verdict, Verdict::TargetUnusable, "{codes:?}: {j:?}");
    }
}

/// Answers without the correlation field that were arrays (Nostr's `["OK", id, true, ""]`)
/// have no field names to show: the hint says they were no object, not "carried )".
#[test]
fn a_misread_correlation_on_arrays_says_they_were_no_object() {
    let plan = plan();
    let misread = crate::model::Misread::NoCorrelationField {
        field: "/9".into(),
        carried: Vec::new(),
        kinds: vec!["OK".into()],
        came_with: Vec::new(),
    };
    let reports = misread_reports(&plan, &misread, |_| {});
    let j = judge_unmet(&plan, &reports, 2);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("(\"/9\"; the first was no object: an array's positions read /0, /1, …)"),
        "{hint}"
    );
}

/// Every expectation unmet while its kinds came holding, where it reads the request's
/// value, one no request id is (`true`: a `reply` path naming a Nostr `OK`'s accepted
/// flag), or one string in every answer that no unmet request sent (`""`, the `OK`'s
/// message): unreadable, quoting the value and the path. A string some unmet request sent,
/// or strings that differ from answer to answer (request ids), are crossed answers: the
/// losses stand. So they do when an expectation correlated on that path was met somewhere.
#[test]
fn answers_holding_another_value_where_the_scenario_reads_one_are_no_loss() {
    let plan = plan();
    let judged_sent = |held: &str, id_like: bool, met_on_it: bool, sent: bool| {
        let misread = crate::model::Misread::OtherCorrelationValue {
            field: "/2".into(),
            held: held.into(),
            id_like,
            sent,
            kinds: vec!["OK".into()],
        };
        let mut reports = misread_reports(&plan, &misread, |r| {
            if met_on_it {
                // Met: its kind arrived too.
                r.counters.expect.correlated_met.insert("/2".into());
                let tally = crate::model::Tally {
                    expected: 3,
                    arrived: 1,
                };
                r.counters.expect.events.insert("OK".into(), tally);
            }
        });
        for (i, r) in reports.iter_mut().enumerate() {
            r.violations[0].correlation = Some(format!("ev-{i}"));
        }
        judge_unmet(&plan, &reports, 2)
    };
    let judged =
        |held: &str, id_like: bool, met_on_it: bool| judged_sent(held, id_like, met_on_it, false);
    let j = judged("true", false, false);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("(OK) held true at the path they read the request's value at (\"/2\"), which no request id is"),
        "{hint}"
    );
    let j = judged("", true, false);
    assert_eq!(j.verdict, Verdict::Unreadable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("held \"\" at the path")
            && hint.contains("the same in every one, where the requests sent values of their own"),
        "{hint}"
    );
    assert_eq!(judged("ev-1", true, false).verdict, Verdict::Violations);
    // One value everywhere, but one each connection's own requests sent (the last of a
    // pipelined burst whose expectation the run's end never opened): crossed answers.
    assert_eq!(judged("8", true, false).verdict, Verdict::Unreadable);
    assert_eq!(
        judged_sent("8", true, false, true).verdict,
        Verdict::Violations
    );
    // Strings that differ from answer to answer are request ids, whoever sent them (a
    // request with no `expect` of its own, one refused): crossed answers, a loss.
    let mut reports = misread_reports(
        &plan,
        &crate::model::Misread::NoCheckedField {
            path: String::new(),
            carried: Vec::new(),
            kinds: Vec::new(),
        },
        |_| {},
    );
    for (i, r) in reports.iter_mut().enumerate() {
        r.violations[0].misread = Some(crate::model::Misread::OtherCorrelationValue {
            field: "/2".into(),
            held: format!("auth-{i}"),
            id_like: true,
            sent: false,
            kinds: vec!["OK".into()],
        });
    }
    assert_eq!(judge_unmet(&plan, &reports, 2).verdict, Verdict::Violations);
    assert_eq!(judged("true", false, true).verdict, Verdict::Violations);
    assert_eq!(judged("", true, true).verdict, Verdict::Violations);
}

/// With no greeting, a keepalive met after each send is no request served: when every
/// request's correlated answer was the error event, the run is unusable; one request
/// served anywhere, and the run is judged as usual.
#[test]
fn a_keepalive_met_after_refused_requests_serves_nothing() {
    let text = "name = \"k\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [\
                { send = { type = \"subscribe\", id = \"s1\" } }, { expect = \"keepalive\" }, \
                { expect = \"result\", correlate = \"id\" }]\n";
    let scenario = crate::scenario::load_str(text, "k.toml").unwrap();
    let plan = crate::plan::build(&scenario, 1);
    let judge = |served: [u64; 2]| {
        let reports = accepted_reports(&plan, |i, e| {
            e.expectations = 2;
            e.expectations_met = 1 + served[i];
            e.expectations_errored = 1 - served[i];
            e.events.entry("keepalive".into()).or_default().arrived = 1;
            e.events.entry("result".into()).or_default().arrived = served[i];
        });
        judge_run(&plan, &reports, &[])
    };
    let j = judge([0, 0]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let j = judge([1, 0]);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    // Some requests refused, another of the same connections never answered (its
    // correlated expectation unmet): the server dropped it, a loss to hunt.
    let mut reports = accepted_reports(&plan, |_, e| {
        e.expectations = 3;
        e.expectations_met = 1;
        e.expectations_errored = 1;
        e.events.entry("keepalive".into()).or_default().arrived = 1;
    });
    for r in &mut reports {
        r.counters.messages_sent = 2;
        r.counters.messages_received = 3;
        r.counters.json_records = 3;
        r.violations = vec![Violation {
            correlation: Some(format!("e-{}", r.id)),
            ..unmet(r.id, false)
        }];
        r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
    }
    let j = judge_unmet(&plan, &reports, 2);
    assert_eq!(j.verdict, Verdict::Violations, "{j:?}");
}

/// Upgraded, then never accepted because the server's first words were its error event
/// (an OCPP central system answering every CALL with a CALLERROR), the script closing each
/// connection itself: unusable, and the hint says the errors accepted nothing, quoting the
/// first, and how to judge a server that accepts without a word.
#[test]
fn a_server_whose_first_words_are_errors_accepted_none_and_the_hint_says_why() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            let a = unaccepted(Some(Cause::ClientClose(1000)));
            let mut r = report(c, a, crate::model::Counters::default());
            r.first_error = Some(r#"[4, "dt1-1", "NotImplemented", "", {}]"#.into());
            r
        })
        .collect();
    let j = judge_run(&plan, &reports, &[]);
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("accepted none")
            && hint.contains(r#"first words were its error event (the first: [4, "dt1-1""#)
            && hint.contains("accepted = \"upgrade\""),
        "{hint}"
    );
}

/// Connections 0 and 1 of `plan`, accepted at 30 µs and answered, each cut by TCP ending
/// under it (no Close frame) at its time of `at_ms`, which left one expectation unmet.
fn cut_under(plan: &Plan, at_ms: [f64; 2]) -> Vec<ConnReport> {
    plan.conns
        .iter()
        .zip(at_ms)
        .map(|(c, at_ms)| {
            let mut r = ended_unmet(c, at_ms, Cause::Reset, None);
            let cut = &mut r.attempts[0];
            cut.last_frame_us = Some((at_ms * 1000.0) as u64 - 100);
            cut.ended_us = Some((at_ms * 1000.0) as u64);
            r
        })
        .collect()
}

/// A server killed mid-run (`kill -9`, an out-of-memory kill, a crash) cuts every open
/// connection at once without a Close frame, and takes no connection after: inconclusive,
/// named as the server going down, not a race to hunt. Cuts apart in time, a connection
/// that outlived them (quiet or not), a server that took a connection after them (in the
/// run or the probe after it), or nothing tried after them stay violations.
#[test]
fn a_server_killed_mid_run_is_no_race() {
    let plan = plan();
    let judged = |reports: &[ConnReport], probes: &[crate::model::Probe]| {
        judge(&Evidence {
            probes,
            correct_reference: false,
            plan: &plan,
            reports,
            by_oracle: &[(OracleKind::Completeness, 2)].into(),
            coverage: &Coverage::default(),
            stopped: StopReason::Completed,
            stalls: &ClientStalls::default(),
            kept: &[],
            redactor: &Redactor::default(),
            target: TARGET,
        })
    };
    let cut = || cut_under(&plan, [2_000.0, 2_004.0]);
    // A reconnect of connection 0 after the cuts, ending as `end`.
    let with_later = |mut reports: Vec<ConnReport>, end: End| {
        let mut later = attempt(end);
        later.started_us = 2_500_000;
        reports[0].attempts.push(later);
        reports
    };
    let probe = |accepted: bool, cause: Option<Cause>| crate::model::Probe {
        token: 0,
        jti: "j".into(),
        accepted,
        cause,
        at_us: 3_000_000,
        expired: false,
        rate_limited: false,
        held: false,
    };
    let refused = Some(Cause::Connect("refused".into()));

    let j = judged(&with_later(cut(), End::Failed(Cause2::Refused)), &[]);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("the server went down at 2.00 s: it cut all 2 connections it had open within 4 ms without a Close frame, and nothing took a TCP connection after it (1 later attempt of the run refused")
            && hint.contains("not a race"),
        "{hint}"
    );
    let probed = judged(
        &cut(),
        &[probe(false, refused.clone()), probe(false, refused.clone())],
    );
    assert_eq!(probed.verdict, Verdict::Inconclusive, "{probed:?}");
    let hint = probed.hint.unwrap_or_default();
    assert!(
        hint.contains("(2 tokens tried again after it refused"),
        "{hint}"
    );

    // Nothing tried after the cuts: nothing shows the server went down.
    assert_eq!(judged(&cut(), &[]).verdict, Verdict::Violations);
    // Taken again after the cuts, in the run or by the probe: up all along.
    let accepted_after = with_later(cut(), End::Accepted);
    assert_eq!(judged(&accepted_after, &[]).verdict, Verdict::Violations);
    let probe_taken = [probe(false, refused.clone()), probe(true, None)];
    assert_eq!(judged(&cut(), &probe_taken).verdict, Verdict::Violations);
    // Cuts seconds apart: no one event.
    let apart = with_later(
        cut_under(&plan, [2_000.0, 9_000.0]),
        End::Failed(Cause2::Refused),
    );
    assert_eq!(judged(&apart, &[]).verdict, Verdict::Violations);
    // Another connection, quiet, open through the cuts: the server kept it.
    let mut quiet = with_later(cut(), End::Failed(Cause2::Refused));
    let mut kept_open = attempt(End::Accepted);
    kept_open.ended_us = Some(20_000_000);
    quiet.push(report(&plan.conns[2], kept_open, Default::default()));
    assert_eq!(judged(&quiet, &[]).verdict, Verdict::Violations);
    // The only connection open, cut, and TCP refused after it: gone down too.
    let mut one = with_later(cut(), End::Failed(Cause2::Refused));
    one.truncate(1);
    let by_one: BTreeMap<OracleKind, u64> = [(OracleKind::Completeness, 1)].into();
    let alone = judge_completed_by(&plan, &one, &by_one);
    assert_eq!(alone.verdict, Verdict::Inconclusive, "{alone:?}");
    let hint = alone.hint.unwrap_or_default();
    assert!(
        hint.contains("it cut the one connection it had open without a Close frame"),
        "{hint}"
    );
    // Cut while another stayed up (its own close came later): no server gone down.
    let mut beside = with_later(cut(), End::Failed(Cause2::Refused));
    beside[1].violations.clear();
    beside[1].violations_by_oracle.clear();
    beside[1].attempts[0].cause = Some(Cause::ClientClose(1000));
    beside[1].attempts[0].ended_us = Some(9_000_000);
    assert_eq!(
        judge_completed_by(&plan, &beside, &by_one).verdict,
        Verdict::Violations
    );
}

/// A server killed after the scripts' last expectations (the connections only thinking or
/// closing then) broke no oracle, but the run is no clean run: inconclusive, saying when
/// it went down. Without anything refused after the cuts, clean as before.
#[test]
fn a_server_killed_after_the_last_expectation_leaves_no_clean_run() {
    let plan = plan();
    let cut_at = |at_us: u64| {
        let mut a = attempt(End::Accepted);
        a.cause = Some(Cause::Reset);
        a.ended_us = Some(at_us);
        a
    };
    let reports = |later: Option<End>| {
        let mut reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .take(2)
            .zip([2_000_000, 2_003_000])
            .map(|(c, at)| report(c, cut_at(at), Default::default()))
            .collect();
        if let Some(end) = later {
            let mut again = attempt(end);
            again.started_us = 2_600_000;
            reports[0].attempts.push(again);
        }
        reports
    };
    let j = judge_completed(&plan, &reports(Some(End::Failed(Cause2::Refused))));
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.starts_with("no oracle broke, but the server went down at 2.00 s, after the scripts' last expectations: it cut all 2 connections it had open within 3 ms")
            && hint.contains("no clean run"),
        "{hint}"
    );
    // Taken again after the cuts: whatever cut them, the server was up.
    let up = judge_completed(&plan, &reports(Some(End::Accepted)));
    assert!(!up.hint.unwrap_or_default().contains("went down"));
}

/// Calibration's note on what kept it out comes first, unless the load could not use the
/// target for the very cause it names (a closed port both times): then the verdict says it
/// once. A load that met something else still gets the note.
#[test]
fn a_calibration_that_met_what_the_load_met_is_not_said_twice() {
    let hint = |ends: [End; 4], calibration: &str, verdict: Verdict| {
        let mut plan = plan();
        plan.oracles.learned.unaccepted = Some(format!(
            "the target accepted no calibration connection ({calibration})"
        ));
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .zip(ends)
            .map(|(c, end)| report(c, attempt(end), Default::default()))
            .collect();
        let j = judge_completed_by(&plan, &reports, &BTreeMap::new());
        assert_eq!(j.verdict, verdict, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let unusable = Verdict::TargetUnusable;
    let closed = hint(
        [End::Failed(Cause2::Refused); 4],
        "connect_refused",
        unusable,
    );
    assert!(
        closed.contains("nothing accepted the TCP connection")
            && !closed.contains("before the load"),
        "{closed}"
    );
    let mixed = hint(
        [
            End::Failed(Cause2::Refused),
            End::Failed(Cause2::Http404),
            End::Failed(Cause2::Http404),
            End::Failed(Cause2::Http404),
        ],
        "connect_refused",
        unusable,
    );
    assert!(
        mixed.contains(
            "before the load, the target accepted no calibration connection (connect_refused): \
             fix that first"
        ),
        "{mixed}"
    );
    // Every token refused with 401, in calibration and under load: said once.
    let wrong_secret = hint(
        [End::Refused(401); 4],
        "http_401",
        Verdict::AuthMisconfigured,
    );
    assert!(
        wrong_secret.contains("every token signed with the scenario's key was refused (http_401")
            && !wrong_secret.contains("before the load"),
        "{wrong_secret}"
    );
    // Shed in calibration, served under load: a busy server, nothing to fix first.
    let shed = hint(
        [End::Accepted; 4],
        "http_503: load shedding",
        Verdict::Clean,
    );
    assert!(
        shed.contains("load shedding), so nothing was learned; the load's connections were served")
            && !shed.contains("fix that first"),
        "{shed}"
    );
}

/// A wrong secret under a script that reconnects: each connection's token refused twice.
/// The count is of refusals; the hint also says on how many connections, as "×4" alone read
/// as four connections. One attempt each says no more than the count.
#[test]
fn refusals_of_reconnecting_connections_say_on_how_many_connections() {
    let plan = plan();
    let judged = |tries: u64| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let attempts = (0..tries)
                    .map(|i| Attempt {
                        started_us: 10 + 1000 * i,
                        ..attempt(End::Refused(401))
                    })
                    .collect();
                ConnReport::of_attempts(c.id, c.token, attempts)
            })
            .collect();
        let j = judge_completed_by(&plan, &reports, &BTreeMap::new());
        assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let twice = judged(2);
    assert!(
        twice.contains(
            "every token signed with the scenario's key was refused (http_401 ×4 on 2 \
             connections)"
        ),
        "{twice}"
    );
    let once = judged(1);
    assert!(
        once.contains("every token signed with the scenario's key was refused (http_401 ×2)"),
        "{once}"
    );
}

/// A failed TLS handshake's advice follows what rustls said of it (the texts as rustls
/// 0.23 words them, through tokio-rustls).
#[test]
fn a_failed_tls_handshake_gets_the_advice_for_what_failed() {
    let said =
        |detail: &str| super::tls_check(Some(&format!("the TLS handshake failed: {detail}")));
    let self_signed_ca = said("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))");
    assert!(self_signed_ca.contains("CA:FALSE") && self_signed_ca.contains("--insecure"));
    assert!(said("invalid peer certificate: UnknownIssuer").contains("--ca-file"));
    let other_host = said(
        "invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate \
         is only valid for DnsName(\"example.com\")",
    );
    assert!(
        other_host.contains("not for the URL's host"),
        "{other_host}"
    );
    assert!(said("invalid peer certificate: Expired").contains("out of date"));
    assert!(said("tls handshake eof").contains("plain ws://"));
    let unknown = super::tls_check(None);
    assert!(unknown.contains("TLS trust (--ca-file)"), "{unknown}");
}

/// Some valid tokens' attempts failed their TLS handshake, refusing an out-of-date
/// certificate (one backend of several behind the URL), the rest accepted: the run is
/// inconclusive, and its hint says what failed and what to do, not that a server was down
/// or overloaded.
#[test]
fn attempts_that_failed_their_tls_handshake_are_told_as_such() {
    let plan = plan();
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                return report(c, attempt(End::Accepted), Default::default());
            }
            let mut a = Attempt::new(10);
            a.outcome = Outcome::Failed;
            a.cause = Some(Cause::Tls);
            let mut r = report(c, a, Default::default());
            let said = "the TLS handshake failed: invalid peer certificate: Expired";
            r.answer = Some(crate::model::Answer::new(Cause::Tls, said.into(), b""));
            r
        })
        .collect();
    let judged = judge_run(&plan, &reports, &[]);
    assert_eq!(judged.verdict, Verdict::Inconclusive, "{:?}", judged.hint);
    let hint = judged.hint.unwrap_or_default();
    assert!(
        hint.contains("failed their TLS handshake (tls_error ×1")
            && hint.contains("out of date")
            && !hint.contains("overloaded"),
        "{hint}"
    );
}

/// The refused steps in words: numbered alone in a one-group plan ("step 3", "steps 2.1
/// and 4"), each with its group when there are several.
#[test]
fn refused_steps_are_listed_with_their_groups_when_there_are_several() {
    let said_no = |step: &[usize], group: &str| Violation {
        misread: Some(crate::model::Misread::WrongValue {
            path: "status".into(),
            held: Some("\"no\"".into()),
            wanted: Some("\"ok\"".into()),
            kinds: vec!["reply".into()],
        }),
        step: StepPlace::of(step).shown(),
        group: group.into(),
        ..unmet(0, false)
    };
    let mut plan = plan();
    let (a, b) = (said_no(&[2, 1], "g"), said_no(&[4], "g"));
    let listed = |plan: &Plan, kept: &[&Violation]| misreading::refused_steps(plan, kept);
    assert_eq!(listed(&plan, &[&a]).as_deref(), Some("step 2.1"));
    assert_eq!(listed(&plan, &[&a, &b]).as_deref(), Some("steps 2.1 and 4"));
    assert_eq!(listed(&plan, &[]), None);
    plan.groups.push("h".into());
    let c = said_no(&[4], "h");
    assert_eq!(
        listed(&plan, &[&a, &c]).as_deref(),
        Some("step 2.1 of group \"g\" and step 4 of group \"h\"")
    );
}

/// Against the built-in reference server with no planted bug, an `expect` step every
/// accepted connection missed the same way is the scenario's (unreadable, no hunt);
/// against any other server, or when some connection met it, or the answers came late,
/// the misses are judged as usual.
#[test]
fn a_step_every_connection_missed_against_the_correct_reference_is_the_scripts() {
    let plan = plan();
    let reports = answered(&plan);
    let missed = |conn| Violation {
        window_ms: Some(300.0),
        step: Some("3".into()),
        ..unmet(conn, false)
    };
    let judged = |kept: &[Violation], correct_reference: bool| {
        judge(&Evidence {
            probes: &[],
            correct_reference,
            plan: &plan,
            reports: &reports,
            by_oracle: &[(OracleKind::Completeness, kept.len() as u64)].into(),
            coverage: &Coverage::default(),
            stopped: StopReason::Completed,
            stalls: &ClientStalls::default(),
            kept,
            redactor: &Redactor::default(),
            target: TARGET,
        })
    };
    let both = [missed(0), missed(1)];
    let scripts = judged(&both, true);
    assert_eq!(scripts.verdict, Verdict::Unreadable, "{scripts:?}");
    let hint = scripts.hint.unwrap_or_default();
    assert!(
        hint.starts_with(
            "every accepted connection of g (2) missed the `expect` at step 3 the same way \
             (wanted progress; seen: done) against the built-in reference server, which has \
             no planted bug"
        ),
        "{hint}"
    );
    assert_eq!(judged(&both, false).verdict, Verdict::Violations);
    // Not every connection, or not one step: still unmet against a correct server, said
    // by the steps missed.
    let one = judged(&[missed(0)], true);
    assert_eq!(one.verdict, Verdict::Unreadable, "{one:?}");
    assert!(one
        .hint
        .unwrap_or_default()
        .starts_with("1 expectations went unmet (g step 3 ×1) against the built-in"),);
    let late = Violation {
        late_ms: Some(450.0),
        ..missed(1)
    };
    assert_eq!(
        judged(&[missed(0), late], true).verdict,
        Verdict::Violations
    );
    let elsewhere = Violation {
        step: Some("5".into()),
        ..missed(1)
    };
    let spread = judged(&[missed(0), elsewhere], true);
    assert_eq!(spread.verdict, Verdict::Unreadable, "{spread:?}");
    assert!(spread
        .hint
        .unwrap_or_default()
        .contains("(g step 3 ×1, g step 5 ×1)"));
    // A repro's plan has actions, not steps: what was expected, never a "?".
    let unplaced = Violation {
        step: None,
        ..missed(0)
    };
    let hint = judged(&[unplaced], true).hint.unwrap_or_default();
    assert!(hint.contains("(g expecting progress ×1)"), "{hint}");
    let other = Violation {
        oracle: OracleKind::Exclusivity,
        ..missed(1)
    };
    let by_oracle = [(OracleKind::Completeness, 1), (OracleKind::Exclusivity, 1)].into();
    let mixed = judge(&Evidence {
        probes: &[],
        correct_reference: true,
        plan: &plan,
        reports: &reports,
        by_oracle: &by_oracle,
        coverage: &Coverage::default(),
        stopped: StopReason::Completed,
        stalls: &ClientStalls::default(),
        kept: &[missed(0), other],
        redactor: &Redactor::default(),
        target: TARGET,
    });
    assert_eq!(mixed.verdict, Verdict::Violations, "{mixed:?}");
}

/// The Phoenix `vsn` note: only for a scenario that sends Phoenix's v2 arrays, and only
/// when the URL does not ask for v2 (no `vsn`, or another version); a v1 scenario
/// (objects, the default serializer) and a non-Phoenix one get none.
#[test]
fn the_phoenix_vsn_note_is_for_v2_arrays_without_vsn_2() {
    let plan_with = |send: &str, reply: &str| {
        let text = format!(
            "name = \"p\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\nsteps = [\n  \
             {{ send = {send} }},\n  {{ expect = \"{reply}\", within = \"1s\" }},\n]\n"
        );
        crate::plan::build(&crate::scenario::load_str(&text, "p.toml").unwrap(), 1)
    };
    let plan_of = |send: &str| plan_with(send, "phx_reply");
    let v2 = plan_of(r#"["1", "1", "room:1", "phx_join", {}]"#);
    let note = |plan: &Plan, url: &str| misreading::phoenix_vsn_note(plan, url);
    let bare = note(&v2, "ws://h/socket/websocket").unwrap_or_default();
    assert!(
        bare.contains("has no `vsn` query parameter")
            && bare.contains("v2 needs `?vsn=2.0.0` in the URL"),
        "{bare}"
    );
    let v1 = note(&v2, "ws://h/socket/websocket?token=t&vsn=1.0.0").unwrap_or_default();
    assert!(v1.contains("asks for vsn=1.0.0"), "{v1}");
    assert_eq!(note(&v2, "ws://h/socket/websocket?token=t&vsn=2.0.0"), None);
    let objects = plan_of(r#"{ topic = "room:1", event = "phx_join", payload = {}, ref = "1" }"#);
    assert_eq!(note(&objects, "ws://h/socket/websocket"), None);
    let other = plan_with(r#"["subscribe", "room:1"]"#, "subscribed");
    assert_eq!(note(&other, "ws://h/ws"), None, "arrays, but no Phoenix");
}

/// A clean run whose declared `[oracles] identity` field no record carried (a misspelled
/// path) says the identity oracle was not exercised, naming the field; one where some
/// record held it says nothing of it.
#[test]
fn a_clean_run_says_when_no_record_carried_the_identity_field() {
    let text =
        "name = \"v\"\nduration = \"1s\"\n[oracles]\nidentity = { field = \"payload.usr\" }\n\
                [[group]]\nname = \"g\"\nusers = 4\nsteps = [{ send = { type = \"hello\" } }, \
                { expect = \"welcome\" }, { close = 1000 }]\n";
    let plan = crate::plan::build(&crate::scenario::load_str(text, "v.toml").unwrap(), 1);
    let mut counters = crate::model::Counters {
        messages_sent: 1,
        messages_received: 1,
        ..Default::default()
    };
    counters.expect.expectations = 1;
    counters.expect.expectations_met = 1;
    let j = judge_counted_in(&plan, &counters, &[]);
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("identity not exercised: no record carried its field \"payload.usr\""),
        "{hint}"
    );
    counters.expect.identity_matched = 1;
    let hint = judge_counted_in(&plan, &counters, &[])
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("identity not exercised"), "{hint}");
}

/// A SignalR hub handshake sent without `[oracles] record_separator` (the case of a
/// SignalR server that waits for the 0x1E terminator and answers nothing) is named first
/// in an inconclusive run's hint, whether the handshake is a `send` or a `send_text`; a
/// scenario that sets the separator, or sends no such handshake, gets no such note.
#[test]
fn a_signalr_handshake_without_its_terminator_is_named_first() {
    let handshake = "[{ send = { protocol = \"json\", version = 1 } }, { close = 1000 }]";
    let silent = |plan: &Plan| {
        let counters = crate::model::Counters {
            messages_sent: 1,
            ..Default::default()
        };
        judge_counted_in(plan, &counters, &[])
    };
    let j = silent(&valid_plan(handshake));
    assert_eq!(j.verdict, Verdict::Inconclusive, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.starts_with("the scenario sends SignalR's hub handshake")
            && hint.contains("record_separator = \"\\u001e\"")
            && hint.contains("sent nothing back"),
        "{hint}"
    );
    let as_text =
        valid_plan("[{ send_text = '{\"protocol\":\"json\",\"version\":1}' }, { close = 1000 }]");
    let hint = silent(&as_text).hint.unwrap_or_default();
    assert!(hint.starts_with("the scenario sends SignalR's"), "{hint}");
    let mut separated = valid_plan(handshake);
    separated.oracles.record_separator = Some("\u{1e}".into());
    let hint = silent(&separated).hint.unwrap_or_default();
    assert!(!hint.contains("SignalR"), "{hint}");
    let other = valid_plan(
        "[{ send = { protocol = \"json\", version = 1, extra = 2 } }, { close = 1000 }]",
    );
    let hint = silent(&other).hint.unwrap_or_default();
    assert!(!hint.contains("SignalR"), "{hint}");
    // Refused at the upgrade (HTTP 401: a wrong secret), the handshake was never sent:
    // the separator explains nothing, and the verdict's own reason comes first.
    let plan = valid_plan(handshake);
    let refused: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Refused(401)), Default::default()))
        .collect();
    let j = judge_completed_by(&plan, &refused, &Default::default());
    assert_eq!(j.verdict, Verdict::AuthMisconfigured, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(!hint.contains("SignalR"), "{hint}");
}

/// The protocol-fault rule reads the fault each connection's report keeps, not the
/// witnesses' wording: the same fault on every valid-token connection the server accepted
/// is named, whatever the witnesses say; two different faults are no "same way each time".
#[test]
fn the_same_protocol_fault_everywhere_is_read_from_the_reports() {
    let plan = plan();
    let utf8 = "invalid UTF-8 in a text frame (RFC 6455 §8.1)";
    let reports_with = |faults: [&str; 2]| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| match c.id {
                0 | 1 => {
                    let mut r = ended_unmet(c, 100.0, Cause::Protocol, None);
                    r.protocol_fault = Some(faults[c.id as usize].to_string());
                    // A witness worded otherwise: the rule does not read it.
                    for v in &mut r.violations {
                        v.seen = "connection lost".into();
                    }
                    r
                }
                _ => report(
                    c,
                    attempt(End::Refused(401)),
                    crate::model::Counters::default(),
                ),
            })
            .collect()
    };
    let by_oracle: BTreeMap<OracleKind, u64> = [(OracleKind::Completeness, 2)].into();
    assert_eq!(
        same_fault_everywhere(&plan, &reports_with([utf8, utf8]), &by_oracle),
        Some((2, utf8.to_string()))
    );
    let masked = "a masked frame from the server (RFC 6455 §5.1: a server never masks)";
    assert_eq!(
        same_fault_everywhere(&plan, &reports_with([utf8, masked]), &by_oracle),
        None
    );
}

/// No upgrade answered before the duration ran out: the target's fault only when the
/// duration gave it time to answer. A duration of microseconds (`--duration 1us`) says
/// so, and points at the duration, not at the target's URL or protocol.
#[test]
fn no_upgrade_answered_within_a_tiny_duration_blames_the_duration() {
    let waiting = |plan: &Plan| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| {
                let mut a = Attempt::new(10);
                a.outcome = Outcome::Cut;
                report(c, a, crate::model::Counters::default())
            })
            .collect()
    };
    let judge_for = |duration: std::time::Duration| {
        let mut plan = plan();
        plan.duration = duration;
        judge_stopped(&plan, &waiting(&plan), StopReason::Duration)
            .hint
            .unwrap_or_default()
    };
    let tiny = judge_for(std::time::Duration::from_micros(1));
    assert!(
        tiny.contains("the duration (1µs) ran out before any upgrade could be answered")
            && !tiny.contains("Check the URL's path"),
        "{tiny}"
    );
    let long = judge_for(std::time::Duration::from_secs(30));
    assert!(long.contains("Check the URL's path"), "{long}");
}

/// Bad tokens refused at the upgrade with a 4xx that states a refusal but is not listed
/// (RFC 6750's 400 for a malformed token) are the server's refusal: the run stays clean,
/// and its hint counts them and spells out the `http` list that declares them. Under the
/// strict policy they are rejection hygiene's to judge, and no such note is made.
#[test]
fn bad_tokens_refused_with_an_unlisted_status_are_counted_and_declared() {
    let mut plan = plan();
    let reports = |plan: &Plan| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| {
                let end = if c.id >= 2 {
                    End::Refused(400)
                } else {
                    End::Accepted
                };
                report(c, attempt(end), Default::default())
            })
            .collect()
    };
    let j = judge_completed_by(&plan, &reports(&plan), &Default::default());
    assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains(
            "the server refused 2 bad tokens at the upgrade with an HTTP status `[oracles] \
             reject` does not list (http_400 ×2)"
        ) && hint.contains("`[oracles] reject = { http = [401, 403, 409, 400] }` states it"),
        "{hint}"
    );
    // The clean run's count of bad tokens says how they were refused, as the note does.
    assert!(
        hint.contains("0 of 2 bad-token attempts refused cleanly and 2 in the server's own words"),
        "{hint}"
    );
    assert!(hint.contains("RFC 6750"), "{hint}");
    plan.oracles.session.reject.policy = crate::model::RejectPolicy::Strict;
    let hint = judge_completed_by(&plan, &reports(&plan), &Default::default())
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("HTTP status"), "{hint}");
}

/// Only bad tokens, every one refused 400 before any upgrade: nothing tells a WebSocket
/// server refusing them from a URL that takes no upgrade. Target unusable, saying a group
/// of valid tokens tells the two apart, and no note reads the 400s as refusals.
#[test]
fn bad_tokens_alone_refused_400_are_no_proof_of_a_websocket_server() {
    let mut plan = plan();
    for t in &mut plan.tokens {
        t.forge = Some(Forge::Bad {
            name: crate::model::BadToken::AlgNone,
        });
    }
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Refused(400)), Default::default()))
        .collect();
    let j = judge_completed_by(&plan, &reports, &Default::default());
    assert_eq!(j.verdict, Verdict::TargetUnusable, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("every connection here presents a bad token")
            && hint.contains("add a group of valid tokens"),
        "{hint}"
    );
    assert!(!hint.contains("a refusal in its own words"), "{hint}");
}

/// The server reset every connection it accepted, and every violation is an expectation
/// those resets cut: it fails each connection alike, which every round of a hunt would
/// show again; the hint says so instead of sending the user hunting. One accepted
/// connection that ended otherwise, and the hunt stands.
#[test]
fn a_server_that_resets_every_accepted_connection_is_no_race_to_hunt() {
    let reset_cut = |conn: u32| Violation {
        ended: Some(crate::model::StreamEnded {
            close_code: None,
            answered: false,
        }),
        seen: "nothing; then connection lost (reset)".into(),
        ..unmet(conn, false)
    };
    let plan = plan();
    let reports_ending = |last: Cause| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| {
                let mut a = attempt(End::Accepted);
                a.cause = Some(if c.id == 3 {
                    last.clone()
                } else {
                    Cause::Reset
                });
                report(c, a, Default::default())
            })
            .collect()
    };
    let by_oracle = BTreeMap::from([(OracleKind::Completeness, 4)]);
    let kept: Vec<Violation> = (0..4).map(reset_cut).collect();
    let hint = violations_hint(&by_oracle, &kept, &reports_ending(Cause::Reset));
    assert!(
        hint.contains("reset every connection it accepted (4 of 4)")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
    let served = violations_hint(&by_oracle, &kept, &reports_ending(Cause::ClientClose(1000)));
    assert!(served.ends_with("; hunt for a repro"), "{served}");
    // Violations not kept (a count past what was kept): not all known to be the resets'.
    let more = BTreeMap::from([(OracleKind::Completeness, 9)]);
    let unknown = violations_hint(&more, &kept, &reports_ending(Cause::Reset));
    assert!(unknown.ends_with("; hunt for a repro"), "{unknown}");
}

/// A clean run whose server also sent frames no oracle could read (garbage text, binary)
/// says so beside "no oracle broke", and how a threshold makes them fatal; none, nothing.
#[test]
fn a_clean_run_names_the_frames_no_oracle_could_read() {
    let plan = valid_plan("[{ close = 1000 }]");
    let reports = |garbage: bool| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| {
                let mut counters = crate::model::Counters {
                    json_records: 4,
                    ..Default::default()
                };
                if garbage {
                    (counters.non_json, counters.binary_frames) = (3, 2);
                }
                report(c, attempt(End::Accepted), counters)
            })
            .collect()
    };
    let hint = |garbage: bool| {
        let j = judge_covered(&plan, &reports(garbage), &Coverage::default());
        assert_eq!(j.verdict, Verdict::Clean, "{j:?}");
        j.hint.unwrap_or_default()
    };
    let n = plan.conns.len();
    let said = hint(true);
    assert!(
        said.contains(&format!(
            "the server also sent {} frames no oracle could read ({} non-JSON text, {} binary",
            5 * n,
            3 * n,
            2 * n
        )) && said.contains("unread_frames"),
        "{said}"
    );
    assert!(!hint(false).contains("no oracle could read"));
}

/// A `where` test whose value the answers held as another type is a slip in the scenario
/// (unreadable, with the quoting advice) when the file wrote the value; when it wrote a
/// typed placeholder alone (`id = "{{run:int}}"`), the number was asked for, and a string
/// in the answers is the server's (no misreading: the unmet expectations stand).
#[test]
fn a_where_test_typed_on_purpose_is_no_type_slip() {
    let misread = crate::model::Misread::WrongType {
        path: "id".into(),
        wanted: "1".into(),
        held: "\"1\"".into(),
        kinds: vec!["result".into()],
    };
    let literal = valid_plan(
        r#"[{ send = { id = "{{run:int}}" } }, { expect = "result", where = { id = 1 } }]"#,
    );
    let slip = type_slips(&literal, 2, &[&misread]);
    assert_eq!(slip.map(|j| j.verdict), Some(Verdict::Unreadable));
    let typed = valid_plan(
        r#"[{ send = { id = "{{run:int}}" } }, { expect = "result", where = { id = "{{run:int}}" } }]"#,
    );
    assert!(type_slips(&typed, 2, &[&misread]).is_none());
}

/// The last rule before a clean verdict: valid-token attempts and none of them accepted is
/// inconclusive, whatever else the run's rules found nothing to say of; one accepted, or
/// no valid token at all (a catalogue of bad ones), is not this rule's.
#[test]
fn no_valid_token_accepted_is_never_clean() {
    let mut t = Tally {
        valid: 8,
        ..Tally::default()
    };
    t.valid_refused.insert(Cause::ServerClose(4409), 4);
    let j = nothing_accepted(&t).expect("nothing accepted");
    assert_eq!(j.verdict, Verdict::Inconclusive);
    let hint = j.hint.unwrap_or_default();
    assert!(
        hint.contains("none of the 8 valid-token connection attempts was accepted (4 refused"),
        "{hint}"
    );
    t.valid_accepted = 1;
    assert!(nothing_accepted(&t).is_none());
    assert!(nothing_accepted(&Tally::default()).is_none());
}

/// Every violation an expectation waiting, on several connections, for a kind no
/// connection ever got (a STOMP topic the server never publishes to, as the script names
/// it): the hint says the server may never send it to this script, which a hunt would
/// take for a race, beside the race every connection loses. One connection that got it,
/// or another kind that came correlated instead, is not this.
#[test]
fn a_kind_every_connection_missed_alike_may_be_the_scripts_mistake() {
    let plan = plan();
    let waiting = |conn: u32| Violation {
        expected: "MESSAGE within 1s".into(),
        seen: "nothing".into(),
        window_ms: Some(1000.0),
        ..unmet(conn, false)
    };
    let reports = |arrived_on: Option<u32>| -> Vec<ConnReport> {
        plan.conns
            .iter()
            .map(|c| {
                let mut counters = crate::model::Counters::default();
                counters.expect.events.insert(
                    "MESSAGE".into(),
                    crate::model::Tally {
                        expected: 1,
                        arrived: u64::from(arrived_on == Some(c.id)),
                    },
                );
                report(c, attempt(End::Accepted), counters)
            })
            .collect()
    };
    let by_oracle = BTreeMap::from([(OracleKind::Completeness, 3)]);
    let kept: Vec<Violation> = (0..3).map(waiting).collect();
    let hint = violations_hint(&by_oracle, &kept, &reports(None));
    assert!(
        hint.contains("no connection ever got \"MESSAGE\" (0 of 4 expected): all 3 connections")
            && hint.contains("never sends it to this script")
            && hint.ends_with("; hunt for a repro"),
        "{hint}"
    );
    let won = violations_hint(&by_oracle, &kept, &reports(Some(3)));
    assert!(!won.contains("no connection ever got"), "{won}");
    let mut misread = kept.clone();
    misread[0].misread = Some(Misread::OtherKinds {
        came: vec!["ERROR".into()],
        kinds: vec!["MESSAGE".into()],
    });
    let other = violations_hint(&by_oracle, &misread, &reports(None));
    assert!(!other.contains("no connection ever got"), "{other}");
    let one = violations_hint(
        &BTreeMap::from([(OracleKind::Completeness, 1)]),
        &kept[..1],
        &reports(None),
    );
    assert!(
        !one.contains("no connection ever got"),
        "one connection: {one}"
    );
}

/// Errors the server sent on connections it then closed before accepting them are its
/// refusal of the connection, said in band: the note says so, not that they refused
/// requests sent too early; on connections it accepted, they are requests sent too early.
#[test]
fn errors_on_connections_the_server_then_refused_are_its_refusal_not_early_requests() {
    let plan = plan();
    let note = |accepted: bool| {
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let a = if accepted {
                    attempt(End::Accepted)
                } else {
                    unaccepted(Some(Cause::ServerClose(4429)))
                };
                let mut counters = crate::model::Counters::default();
                counters.expect.expectations = 2;
                counters.expect.expectations_errored = 1;
                counters.expect.expectations_errored_early = 1;
                report(c, a, counters)
            })
            .collect();
        errored_note(&plan, &reports).unwrap_or_default()
    };
    let refused = note(false);
    assert!(
        refused.contains("every one on a connection the server never accepted")
            && !refused.contains("too early"),
        "{refused}"
    );
    assert!(
        note(true).contains("refused as too early"),
        "{}",
        note(true)
    );
}

/// A scenario whose declared exclusivity no round can judge (each connection its own
/// token) says so when a hunt's rounds were all clean; one sharing tokens does not.
#[test]
fn a_hunt_says_when_no_round_could_judge_exclusivity() {
    let plan_of = |token: &str| {
        let text = format!(
            "name = \"x\"\nduration = \"1s\"\n[oracles]\nexclusive = {{ max_live = 1 }}\n\
             [[group]]\nname = \"g\"\nusers = 4\ntoken = {token}\n\
             steps = [{{ expect = \"welcome\", within = \"1s\" }}, {{ close = 1000 }}]\n"
        );
        let scenario = crate::scenario::load_str(&text, "x.toml").unwrap();
        crate::plan::build(&scenario, 1)
    };
    let note = exclusivity_unexercised_note(&plan_of("\"per-connection\""));
    assert!(
        note.as_deref()
            .is_some_and(|n| n.starts_with("exclusivity not exercised")),
        "{note:?}"
    );
    assert_eq!(
        exclusivity_unexercised_note(&plan_of("{ share = 2 }")),
        None
    );
}

/// Attempts the scripts closed unaccepted after the server answered them with its error
/// event (a single-session server refusing in band, on a socket it left open): the note
/// says how to declare that refusal, never to accept the error as a welcome.
#[test]
fn an_error_before_acceptance_is_declared_as_a_refusal_not_accepted_as_a_welcome() {
    let mut plan = plan();
    plan.oracles.session.accepted = crate::model::AcceptRule::Message {
        event: "welcome".into(),
    };
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| {
            if c.id == 0 {
                return report(c, attempt(End::Accepted), Default::default());
            }
            let mut a = unaccepted(Some(Cause::ClientClose(1000)));
            a.last_frame_us = Some(30);
            let mut r = report(c, a, Default::default());
            r.answer = Some(crate::model::Answer {
                cause: Cause::ClientClose(1000),
                detail: "closed by the client".into(),
                body: r#"{"type": "error", "code": "session_active"}"#.into(),
                retry_after_s: None,
            });
            r
        })
        .collect();
    let note = closed_unaccepted_note(&plan, &reports).unwrap_or_default();
    assert!(
        note.contains("refused = { type = \"error\", code = \"session_active\" }")
            && note.contains("reject = { message = \"refused\" }")
            && !note.contains("matches"),
        "{note}"
    );
}

/// A declared `[oracles] sequence` whose `per` field no record carried (`per = "sym"`,
/// the records say `symbol`) ran every record's number as one sequence: its breaks, each
/// "(no sym)", are the script's reading, unreadable, not violations to hunt. Once some
/// record carried it, or a break came on a record that had it, they are findings. A clean
/// run whose sequence field no record carried says the oracle was not exercised; when what
/// it passed over names a misspelling (a numbered kind close to its own, its own kind
/// without the field), it is unreadable.
#[test]
fn a_sequence_per_field_no_record_carried_is_the_scripts_reading() {
    let text = "name = \"v\"\nduration = \"1s\"\n[oracles]\n\
                sequence = { field = \"seq\", per = \"sym\", kinds = [\"update\"] }\n\
                [[group]]\nname = \"g\"\nusers = 2\nsteps = [{ send = { type = \"sub\" } }, \
                { expect = \"update update\" }, { close = 1000 }]\n";
    let plan = crate::plan::build(&crate::scenario::load_str(text, "v.toml").unwrap(), 1);
    let judged_with = |scoped: u64, expected: &str, other: bool| {
        let mut counters = crate::model::Counters {
            messages_sent: 1,
            messages_received: 2,
            ..Default::default()
        };
        counters.expect.expectations = 1;
        counters.expect.expectations_met = 1;
        counters.expect.sequence_numbered = 2;
        counters.expect.sequence_scoped = scoped;
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let mut r = report(c, attempt(End::Accepted), counters.clone());
                r.violations = vec![Violation {
                    oracle: OracleKind::Ordering,
                    expected: expected.into(),
                    seen: "seq = 1 on update".into(),
                    ..unmet(c.id, false)
                }];
                if other {
                    r.violations.push(unmet(c.id, false));
                }
                r
            })
            .collect();
        let mut by_oracle: BTreeMap<OracleKind, u64> =
            [(OracleKind::Ordering, 2)].into_iter().collect();
        if other {
            by_oracle.insert(OracleKind::Completeness, 2);
        }
        judge_completed_by(&plan, &reports, &by_oracle)
    };
    let judged = |scoped: u64, expected: &str| judged_with(scoped, expected, false);
    let misnamed = judged(0, "seq = 2 (no sym)");
    assert_eq!(misnamed.verdict, Verdict::Unreadable, "{misnamed:?}");
    let hint = misnamed.hint.unwrap_or_default();
    assert!(
        hint.contains("per field \"sym\" was on no record"),
        "{hint}"
    );
    assert_eq!(judged(1, "seq = 2 (no sym)").verdict, Verdict::Violations);
    assert_eq!(
        judged(0, "seq = 2 (sym = BTC)").verdict,
        Verdict::Violations
    );
    // Beside a real finding, still the script's reading: said, the rest to judge again.
    let mixed = judged_with(0, "seq = 2 (no sym)", true);
    assert_eq!(mixed.verdict, Verdict::Unreadable, "{mixed:?}");
    let hint = mixed.hint.unwrap_or_default();
    assert!(hint.contains("2 violations besides them"), "{hint}");

    let mut counters = crate::model::Counters {
        messages_sent: 1,
        messages_received: 2,
        ..Default::default()
    };
    counters.expect.expectations = 1;
    counters.expect.expectations_met = 1;
    let hint = judge_counted_in(&plan, &counters, &[])
        .hint
        .unwrap_or_default();
    assert!(
        hint.contains("sequence not exercised: no record of its kinds (update) carried a number"),
        "{hint}"
    );
    counters.expect.sequence_numbered = 2;
    let hint = judge_counted_in(&plan, &counters, &[])
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("sequence not exercised"), "{hint}");

    // What it passed over names the misreading: unreadable, never clean. A numbered
    // kind spelled close to its own (`updates`), or its own kind without the field.
    counters.expect.sequence_numbered = 0;
    let missed = |m: crate::model::SequenceMissed| {
        let mut c = counters.clone();
        c.expect.sequence_missed = Some(Box::new(m));
        judge_counted_in(&plan, &c, &[])
    };
    let kind = missed(crate::model::SequenceMissed {
        other_kinds: 5,
        other_kind: Some("updates".into()),
        ..Default::default()
    });
    assert_eq!(kind.verdict, Verdict::Unreadable, "{kind:?}");
    let hint = kind.hint.unwrap_or_default();
    assert!(
        hint.contains("10 records of kind \"updates\" carried a number at \"seq\"")
            && hint.contains("`kinds` names \"updates\""),
        "{hint}"
    );
    let field = missed(crate::model::SequenceMissed {
        unnumbered: 4,
        unnumbered_carried: vec!["type".into(), "n".into()],
        ..Default::default()
    });
    assert_eq!(field.verdict, Verdict::Unreadable, "{field:?}");
    let hint = field.hint.unwrap_or_default();
    assert!(
        hint.contains("8 records of its kinds (update) came without a field \"seq\" (the first carried type, n)"),
        "{hint}"
    );
    // A numbered kind nothing like its own is another sequence: not exercised, said.
    let other = missed(crate::model::SequenceMissed {
        other_kinds: 5,
        other_kind: Some("heartbeat".into()),
        ..Default::default()
    });
    assert_eq!(other.verdict, Verdict::Clean, "{other:?}");
    assert!(other
        .hint
        .unwrap_or_default()
        .contains("sequence not exercised"),);
}

/// Under the default first-frame rule, errors that came before a connection's acceptance
/// (a server that accepts at the upgrade and rate-limits the first requests) on a
/// connection never accepted after them say how to declare an acceptance at the upgrade;
/// under an in-band acceptance message they do not, nor where a greeting accepted every
/// connection after its errors (following that advice read the greeting's errors as
/// violations).
#[test]
fn early_errors_under_the_first_frame_rule_point_at_accepting_at_the_upgrade() {
    let note_of = |accepted: &str, all_accepted: bool| {
        let text = format!(
            "name = \"v\"\nduration = \"1s\"\n[oracles]\n{accepted}\n[[group]]\nname = \"g\"\n\
             users = 2\nsteps = [{{ send = {{ type = \"q\" }} }}, {{ expect = \"a\" }}]\n"
        );
        let plan = crate::plan::build(&crate::scenario::load_str(&text, "v.toml").unwrap(), 1);
        let mut counters = crate::model::Counters::default();
        counters.expect.expectations = 2;
        counters.expect.expectations_errored = 2;
        counters.expect.expectations_errored_early = 1;
        let reports: Vec<ConnReport> = plan
            .conns
            .iter()
            .map(|c| {
                let end = match all_accepted || c.id == 0 {
                    true => attempt(End::Accepted),
                    false => unaccepted(Some(Cause::ClientClose(1000))),
                };
                report(c, end, counters.clone())
            })
            .collect();
        errored_note(&plan, &reports).unwrap_or_default()
    };
    let note = |accepted: &str| note_of(accepted, false);
    let first_frame = note("");
    assert!(
        first_frame.contains("declare `[oracles] accepted = \"upgrade\"`"),
        "{first_frame}"
    );
    let in_band = note("accepted = { message = \"welcome\" }");
    assert!(!in_band.contains("accepted = \"upgrade\""), "{in_band}");
    assert!(
        in_band.contains("2 of them requests sent before"),
        "{in_band}"
    );
    let greeted = note_of("", true);
    assert!(!greeted.contains("accepted = \"upgrade\""), "{greeted}");
}

/// The note on error answers counts them among the expectations judged, as the clean
/// summary does: those cut (by the run's end, or needing a capture a refused request never
/// gave) are left out of both. It said "20 of 260" beside "220 of 240 expectations met".
#[test]
fn the_error_note_counts_the_expectations_the_clean_summary_counts() {
    let text = "name = \"v\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 1\n\
                steps = [{ send = { type = \"q\" } }, { expect = \"a\" }]\n";
    let plan = crate::plan::build(&crate::scenario::load_str(text, "v.toml").unwrap(), 1);
    let mut counters = crate::model::Counters::default();
    let e = &mut counters.expect;
    (e.expectations, e.expectations_met) = (26, 22);
    (e.expectations_errored, e.expectations_cut) = (2, 2);
    let reports: Vec<ConnReport> = plan
        .conns
        .iter()
        .map(|c| report(c, attempt(End::Accepted), counters.clone()))
        .collect();
    let note = errored_note(&plan, &reports).unwrap_or_default();
    assert!(
        note.contains("answered 2 of 24 expectations with its error event"),
        "{note}"
    );
    assert!(clean_summary(&reports).starts_with("22 of 24 expectations met"));
}

/// An out-of-order violation that saw a kind again right after itself, where the pattern
/// names it once, says how to allow a stream of it; other orders say nothing of it.
#[test]
fn a_kind_repeated_where_the_pattern_has_it_once_says_how_to_allow_a_stream() {
    let by_oracle = BTreeMap::from([(OracleKind::Completeness, 1)]);
    let out_of_order = |seen: &str| Violation {
        expected: "next complete in order (still to come: complete)".into(),
        seen: seen.into(),
        ..unmet(0, false)
    };
    let hint = violations_hint(&by_oracle, &[out_of_order("next next")], &[]);
    assert!(
        hint.contains(
            "`next` came again right after itself where the pattern `next complete` has it \
             once: if the server sends several for a request (a stream), allow them \
             (`next+ complete`)"
        ),
        "{hint}"
    );
    let other = violations_hint(&by_oracle, &[out_of_order("complete")], &[]);
    assert!(!other.contains("came again"), "{other}");
}

/// A Phoenix v2 scenario whose URL asks for no `vsn`, every connection closed on its first
/// array frame (1011 "bad frame"): whatever the verdict, it hears first that v2 needs
/// `?vsn=2.0.0` (it read as a token refused, and the advice to declare the close led to
/// "check the secret").
#[test]
fn a_phoenix_v2_scenario_without_vsn_hears_of_it_whatever_the_verdict() {
    let text = "name = \"p\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\n\
                steps = [{ send = [\"1\", \"1\", \"room:lobby\", \"phx_join\", {}] }, \
                { expect = \"phx_reply\" }]\n";
    let plan = crate::plan::build(&crate::scenario::load_str(text, "p.toml").unwrap(), 1);
    let bad_frame = Door::Closed {
        code: 1011,
        reason: "bad frame",
        sent: 1,
    };
    let reports = door_reports(&plan, [bad_frame; 2]);
    let j = judge_door(&plan, &reports, 0, &Redactor::default());
    assert_ne!(j.verdict, Verdict::Clean, "{j:?}");
    let hint = j.hint.unwrap_or_default();
    assert!(hint.contains("?vsn=2.0.0"), "{hint}");
}

/// A request answered, correlated, with one kind whose name says no (`err`) the scenario
/// does not declare as its error event: the hint says how to declare it before sending the
/// user hunting; a kind that says nothing of the sort (`joined_late`) gets no such note,
/// nor do `deferred` and `snack` (refusal words only as whole words: `err`, `nack`).
#[test]
fn an_undeclared_refusal_kind_is_named_with_how_to_declare_it() {
    let plan = plan();
    let reports = answered(&plan);
    let refused_with = |kind: &str| {
        let kept = vec![
            Violation {
                correlation: Some("j-4".into()),
                misread: Some(Misread::OtherKinds {
                    came: vec![kind.into()],
                    kinds: vec!["joined".into()],
                }),
                ..unmet(0, false)
            },
            Violation {
                correlation: Some("s-1".into()),
                ..unmet(1, false)
            },
        ];
        let by_oracle = [(OracleKind::Completeness, 2)].into();
        judge_completed_kept(&plan, &reports, &by_oracle, &kept)
            .hint
            .unwrap_or_default()
    };
    let hint = refused_with("err");
    assert!(
        hint.contains("one of them was answered, correlated with its request, with \"err\"")
            && hint.contains("`[oracles] error_event = \"err\"`"),
        "{hint}"
    );
    for other in ["joined_late", "deferred", "snack"] {
        let hint = refused_with(other);
        assert!(!hint.contains("error_event"), "{other}: {hint}");
    }
}

/// The same refusal at one step on every connection, each of which had that step served
/// before (a script that sends an id again in a `repeat`, answered `Duplicate`): the hint
/// calls it deterministic, quotes why, and sends no one hunting. Where a connection never
/// had the step served, it may be a race's loss: the hunt stays.
#[test]
fn the_same_refusal_after_the_step_was_served_is_deterministic() {
    let plan = plan();
    let served = crate::model::StepPlace::of(&[4, 2]).bloom_bit();
    let refusal = |conn: u32| Violation {
        expected: "ack with success = true".into(),
        seen: "ack with success = false, and error = {\"name\":\"Duplicate\"}".into(),
        correlation: Some("2".into()),
        step: Some("4.2".into()),
        misread: Some(Misread::WrongValue {
            path: "success".into(),
            held: Some("false".into()),
            wanted: Some("true".into()),
            kinds: vec!["ack".into()],
        }),
        ..unmet(conn, false)
    };
    let kept = vec![refusal(0), refusal(1)];
    let by_oracle = [(OracleKind::Completeness, 2)].into();
    let hint_with = |met: [u64; 2]| {
        let mut reports = answered(&plan);
        for (r, m) in reports.iter_mut().zip(met) {
            r.met_steps = m;
        }
        judge_completed_kept(&plan, &reports, &by_oracle, &kept)
            .hint
            .unwrap_or_default()
    };
    let hint = hint_with([served, served]);
    assert!(
        hint.contains("same refusal at step 4.2 (success = false, error = {\"name\":\"Duplicate\"}) on each of 2 connections")
            && !hint.contains("hunt for a repro"),
        "{hint}"
    );
    let hint = hint_with([served, 0]);
    assert!(!hint.contains("same refusal"), "{hint}");
    // A third connection served there and never refused: some were, some not.
    let mut reports = answered(&plan);
    let mut third = reports[0].clone();
    third.id = 2;
    reports.push(third);
    for r in &mut reports {
        r.met_steps = served;
    }
    let hint = judge_completed_kept(&plan, &reports, &by_oracle, &kept)
        .hint
        .unwrap_or_default();
    assert!(!hint.contains("same refusal"), "{hint}");
}

/// A step the server refused on every connection with its error event and then closed
/// each one (STOMP's ERROR, then its close), served nowhere while another step was: the
/// expectations after it, cut by that close, are no race; target unusable, naming the
/// step. A connection that went unmet without such a refusal keeps the run a race's.
#[test]
fn a_refused_step_then_a_close_is_no_race() {
    let plan = plan();
    let judged = |refused_on: &[u32]| {
        let mut reports = answered(&plan);
        for r in reports.iter_mut().filter(|r| r.id < 2) {
            r.met_steps = crate::model::StepPlace::of(&[1]).bloom_bit();
            if refused_on.contains(&r.id) {
                r.errored_steps = vec![crate::model::StepPlace::of(&[3])];
                r.first_error_accepted = Some("ERROR missing header destination".into());
            }
            r.violations = vec![Violation {
                expected: "MESSAGE".into(),
                seen: "nothing; then server closed with 1000".into(),
                ended: Some(crate::model::StreamEnded {
                    close_code: Some(1000),
                    answered: false,
                }),
                step: Some("5".into()),
                ..unmet(r.id, false)
            }];
            r.violations_by_oracle = [(OracleKind::Completeness, 1)].into();
        }
        let by_oracle = [(OracleKind::Completeness, 2)].into();
        judge_completed_by(&plan, &reports, &by_oracle)
    };
    let refused = judged(&[0, 1]);
    assert_eq!(refused.verdict, Verdict::TargetUnusable, "{refused:?}");
    let hint = refused.hint.unwrap_or_default();
    assert!(
        hint.contains("every request of step 3 with its error event (the first: ERROR missing header destination)")
            && hint.contains("It then closed each connection it refused there, so the 2 expectations"),
        "{hint}"
    );
    assert_eq!(judged(&[0]).verdict, Verdict::Violations);
}
