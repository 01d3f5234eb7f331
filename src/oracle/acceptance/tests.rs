//! The attempt judge, table-driven: each row replays the events one attempt saw (as the
//! connection task reports them to the judge) under one accept rule and reject list, and
//! states the resulting record and counters.

use super::*;
use crate::model::Counters;
use crate::model::{RejectPolicy, RejectSpec};

/// What the connection task tells the judge, in order.
#[derive(Debug, Clone)]
enum Ev {
    Upgraded(u64),
    /// A data frame at this time, with its event type (a JSON object's `type`).
    Data(u64, Option<&'static str>),
    ServerClose(u16),
    DialFailed(Cause, bool, u64),
    Aborted(Cause, u64),
    /// The run ended while the dial was in progress.
    Cut(u64),
    Ended(Cause, u64),
}

/// The record and counters one row must leave behind.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    outcome: Outcome,
    upgraded_us: Option<u64>,
    accepted_us: Option<u64>,
    last_frame_us: Option<u64>,
    ended_us: Option<u64>,
    cause: Option<Cause>,
    clean_end: bool,
    /// `(accepted, rejected, failed, aborted)` counters.
    counts: (u64, u64, u64, u64),
    refused_by: Vec<(Cause, u64)>,
    ended_by: Vec<(Cause, u64)>,
    /// What each `Data` event returned ("this frame made it accepted").
    data_accepted: Vec<bool>,
}

impl Default for Want {
    fn default() -> Self {
        Want {
            outcome: Outcome::Pending,
            upgraded_us: None,
            accepted_us: None,
            last_frame_us: None,
            ended_us: None,
            cause: None,
            clean_end: false,
            counts: (0, 0, 0, 0),
            refused_by: Vec::new(),
            ended_by: Vec::new(),
            data_accepted: Vec::new(),
        }
    }
}

/// The refusal message every row's rules declare (`reject.message`).
const REFUSED: &str = "refused";

struct Case {
    name: &'static str,
    accepted: AcceptRule,
    /// `reject.close`; `reject.http` plays no part in the judge. Every row declares the
    /// in-band refusal kind [`REFUSED`].
    close: &'static [u16],
    events: Vec<Ev>,
    want: Want,
}

fn rules(accepted: AcceptRule, close: &[u16]) -> SessionOracles {
    SessionOracles {
        accepted,
        reject: RejectSpec {
            http: vec![401, 403, 409],
            close: close.to_vec(),
            message: Some(REFUSED.into()),
            shed: Vec::new(),
            replaced: Vec::new(),
            policy: RejectPolicy::Lenient,
        },
        ..SessionOracles::default()
    }
}

fn message(event: &str) -> AcceptRule {
    AcceptRule::Message {
        event: event.into(),
    }
}

fn replay(case: &Case) -> (Attempt, Counters, Vec<bool>) {
    let rules = rules(case.accepted.clone(), case.close);
    let judge = Judge { rules: &rules };
    let mut a = Attempt::new(100);
    let mut c = Counters::default();
    let mut data = Vec::new();
    for ev in &case.events {
        match ev.clone() {
            Ev::Upgraded(t) => judge.upgraded(&mut a, t),
            Ev::Data(t, event) => data.push(judge.data(&mut a, t, event)),
            Ev::ServerClose(code) => judge.server_close(&mut a, Cause::of_close_code(code), false),
            Ev::DialFailed(cause, rejected, t) => judge.dial_failed(&mut a, cause, rejected, t),
            Ev::Aborted(cause, t) => judge.aborted(&mut a, cause, t),
            Ev::Cut(t) => judge.cut(&mut a, t),
            Ev::Ended(cause, t) => judge.ended(&mut a, cause, t),
        }
    }
    c.count_attempt(&a);
    (a, c, data)
}

fn check(cases: &[Case]) {
    for case in cases {
        let (a, c, data) = replay(case);
        let got = Want {
            outcome: a.outcome,
            upgraded_us: a.upgraded_us,
            accepted_us: a.accepted_us,
            last_frame_us: a.last_frame_us,
            ended_us: a.ended_us,
            cause: a.cause.clone(),
            clean_end: a.clean_end,
            counts: (c.accepted, c.rejected, c.failed, c.aborted),
            refused_by: c.refused_by.into_iter().collect(),
            ended_by: c.ended_by.into_iter().collect(),
            data_accepted: data,
        };
        assert_eq!(got, case.want, "case {:?}", case.name);
        assert_eq!(
            c.accepted + c.rejected + c.failed + c.aborted + c.cut + c.client_errors,
            c.attempted,
            "case {:?}: every attempt counted once",
            case.name
        );
        assert_eq!(a.started_us, 100, "case {:?}: start kept", case.name);
    }
}

/// An attempt accepted at `at`, still open.
fn accepted_at(upgraded: u64, at: u64, frame: Option<u64>) -> Want {
    Want {
        outcome: Outcome::Accepted,
        upgraded_us: Some(upgraded),
        accepted_us: Some(at),
        last_frame_us: frame,
        counts: (1, 0, 0, 0),
        ..Want::default()
    }
}

#[test]
fn upgrade_rule() {
    let cases = [
        Case {
            name: "the 101 is the acceptance",
            accepted: AcceptRule::Upgrade,
            close: &[1008],
            events: vec![Ev::Upgraded(200)],
            want: accepted_at(200, 200, None),
        },
        Case {
            name: "frames after the 101 only move the last-frame mark",
            accepted: AcceptRule::Upgrade,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, None), Ev::Data(400, None)],
            want: Want {
                data_accepted: vec![false, false],
                ..accepted_at(200, 200, Some(400))
            },
        },
        Case {
            name: "a policy close after the 101 is no refusal: already accepted",
            accepted: AcceptRule::Upgrade,
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::ServerClose(1008),
                Ev::Ended(Cause::ServerClose(1008), 300),
            ],
            want: Want {
                ended_us: Some(300),
                cause: Some(Cause::ServerClose(1008)),
                clean_end: true,
                ended_by: vec![(Cause::ServerClose(1008), 1)],
                ..accepted_at(200, 200, None)
            },
        },
        Case {
            name: "a reset after acceptance is how it ended, not a failure",
            accepted: AcceptRule::Upgrade,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Reset, 900)],
            want: Want {
                ended_us: Some(900),
                cause: Some(Cause::Reset),
                ended_by: vec![(Cause::Reset, 1)],
                ..accepted_at(200, 200, None)
            },
        },
    ];
    check(&cases);
}

#[test]
fn first_frame_rule() {
    let cases = [
        Case {
            name: "the 101 alone leaves the verdict pending",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200)],
            want: Want {
                upgraded_us: Some(200),
                ..Want::default()
            },
        },
        Case {
            name: "the first data frame accepts, any type",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, Some("hello"))],
            want: Want {
                data_accepted: vec![true],
                ..accepted_at(200, 300, Some(300))
            },
        },
        Case {
            name: "a non-JSON first frame accepts too",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, None)],
            want: Want {
                data_accepted: vec![true],
                ..accepted_at(200, 300, Some(300))
            },
        },
        Case {
            name: "later frames do not accept again but move the last-frame mark",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, None),
                Ev::Data(500, Some("x")),
            ],
            want: Want {
                data_accepted: vec![true, false],
                ..accepted_at(200, 300, Some(500))
            },
        },
        Case {
            name: "a policy close before any frame is a rejection",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::ServerClose(1008),
                Ev::Ended(Cause::ServerClose(1008), 300),
            ],
            want: Want {
                outcome: Outcome::Rejected,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::ServerClose(1008)),
                clean_end: true,
                counts: (0, 1, 0, 0),
                refused_by: vec![(Cause::ServerClose(1008), 1)],
                ..Want::default()
            },
        },
        Case {
            name: "a close code outside reject.close before any frame is a failure",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::ServerClose(1011),
                Ev::Ended(Cause::ServerClose(1011), 300),
            ],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::ServerClose(1011)),
                clean_end: true,
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::ServerClose(1011), 1)],
                ..Want::default()
            },
        },
        Case {
            name: "reject.close is the scenario's list: 4001 counts when listed",
            accepted: AcceptRule::FirstFrame,
            close: &[1008, 4001],
            events: vec![Ev::Upgraded(200), Ev::ServerClose(4001)],
            want: Want {
                outcome: Outcome::Rejected,
                upgraded_us: Some(200),
                cause: Some(Cause::ServerClose(4001)),
                clean_end: true,
                counts: (0, 1, 0, 0),
                refused_by: vec![(Cause::ServerClose(4001), 1)],
                ..Want::default()
            },
        },
        Case {
            name: "an empty reject.close makes every early close a failure",
            accepted: AcceptRule::FirstFrame,
            close: &[],
            events: vec![Ev::Upgraded(200), Ev::ServerClose(1008)],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                cause: Some(Cause::ServerClose(1008)),
                clean_end: true,
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::ServerClose(1008), 1)],
                ..Want::default()
            },
        },
        Case {
            name: "a close after acceptance keeps the verdict and marks a clean end",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, None),
                Ev::ServerClose(1008),
                Ev::Ended(Cause::ServerClose(1008), 400),
            ],
            want: Want {
                ended_us: Some(400),
                cause: Some(Cause::ServerClose(1008)),
                clean_end: true,
                ended_by: vec![(Cause::ServerClose(1008), 1)],
                data_accepted: vec![true],
                ..accepted_at(200, 300, Some(300))
            },
        },
        Case {
            name: "reset before the first frame: died on its own, failed",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Reset, 300)],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::Reset),
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::Reset, 1)],
                ..Want::default()
            },
        },
        Case {
            name: "a server that stops reading before the first frame: failed",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Timeout("send"), 300)],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::Timeout("send")),
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::Timeout("send"), 1)],
                ..Want::default()
            },
        },
        Case {
            name: "protocol error before the first frame: failed",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Protocol, 300)],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::Protocol),
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::Protocol, 1)],
                ..Want::default()
            },
        },
        Case {
            name: "oversized first frame: failed",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Oversized, 300)],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                ended_us: Some(300),
                cause: Some(Cause::Oversized),
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::Oversized, 1)],
                ..Want::default()
            },
        },
        Case {
            name: "we closed before any frame: accepted at the end, nothing contradicted it",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::ClientClose(1000), 700)],
            want: Want {
                ended_us: Some(700),
                cause: Some(Cause::ClientClose(1000)),
                ended_by: vec![(Cause::ClientClose(1000), 1)],
                ..accepted_at(200, 700, None)
            },
        },
        Case {
            name: "the run ended before any frame: accepted at the cut",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Interrupted, 700)],
            want: Want {
                ended_us: Some(700),
                cause: Some(Cause::Interrupted),
                ended_by: vec![(Cause::Interrupted, 1)],
                ..accepted_at(200, 700, None)
            },
        },
    ];
    check(&cases);
}

/// A message of the declared refusal kind before acceptance is a clean refusal, as a
/// listed close code is; after acceptance, or of a kind not declared, it is a frame.
#[test]
fn in_band_refusal() {
    let refused = Cause::RefusedInBand(REFUSED.into());
    let rejected = |last_frame: u64, ended: Option<u64>, clean_end: bool| Want {
        outcome: Outcome::Rejected,
        upgraded_us: Some(200),
        last_frame_us: Some(last_frame),
        ended_us: ended,
        cause: Some(refused.clone()),
        clean_end,
        counts: (0, 1, 0, 0),
        refused_by: vec![(refused.clone(), 1)],
        data_accepted: vec![false],
        ..Want::default()
    };
    let cases = [
        Case {
            name: "the refusal message, then Close 1000 (not a listed code): refused",
            accepted: message("welcome"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some(REFUSED)),
                Ev::ServerClose(1000),
                Ev::Ended(Cause::ServerClose(1000), 400),
            ],
            want: rejected(300, Some(400), true),
        },
        Case {
            name: "the refusal message, then a reset: still refused",
            accepted: message("welcome"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some(REFUSED)),
                Ev::Ended(Cause::Reset, 400),
            ],
            want: rejected(300, Some(400), false),
        },
        Case {
            name: "under first_frame the refusal message is no acceptance",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, Some(REFUSED))],
            want: rejected(300, None, false),
        },
        Case {
            name: "after acceptance the refusal kind is just a frame",
            accepted: message("welcome"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some("welcome")),
                Ev::Data(400, Some(REFUSED)),
            ],
            want: Want {
                data_accepted: vec![true, false],
                ..accepted_at(200, 300, Some(400))
            },
        },
        Case {
            name: "a kind that is not the declared one refuses nothing",
            accepted: AcceptRule::FirstFrame,
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, Some("disconnect"))],
            want: Want {
                data_accepted: vec![true],
                ..accepted_at(200, 300, Some(300))
            },
        },
    ];
    check(&cases);
}

#[test]
fn message_rule() {
    let cases = [
        Case {
            name: "a frame of another type does not accept, but is served",
            accepted: message("ready"),
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, Some("hello"))],
            want: Want {
                upgraded_us: Some(200),
                last_frame_us: Some(300),
                data_accepted: vec![false],
                ..Want::default()
            },
        },
        Case {
            name: "a frame without a type does not accept",
            accepted: message("ready"),
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, None)],
            want: Want {
                upgraded_us: Some(200),
                last_frame_us: Some(300),
                data_accepted: vec![false],
                ..Want::default()
            },
        },
        Case {
            name: "the wanted event accepts, after others",
            accepted: message("ready"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some("hello")),
                Ev::Data(400, Some("ready")),
                Ev::Data(500, Some("ready")),
            ],
            want: Want {
                data_accepted: vec![false, true, false],
                ..accepted_at(200, 400, Some(500))
            },
        },
        Case {
            name: "event names match exactly",
            accepted: message("ready"),
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Data(300, Some("Ready"))],
            want: Want {
                upgraded_us: Some(200),
                last_frame_us: Some(300),
                data_accepted: vec![false],
                ..Want::default()
            },
        },
        Case {
            name: "we closed before the wanted event: failed (it never came)",
            accepted: message("ready"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some("hello")),
                Ev::Ended(Cause::ClientClose(1000), 700),
            ],
            want: Want {
                outcome: Outcome::Failed,
                upgraded_us: Some(200),
                last_frame_us: Some(300),
                ended_us: Some(700),
                cause: Some(Cause::ClientClose(1000)),
                counts: (0, 0, 1, 0),
                refused_by: vec![(Cause::ClientClose(1000), 1)],
                data_accepted: vec![false],
                ..Want::default()
            },
        },
        Case {
            name: "the run ended before the wanted event: cut, not the server's failure",
            accepted: message("ready"),
            close: &[1008],
            events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Interrupted, 700)],
            want: Want {
                outcome: Outcome::Cut,
                upgraded_us: Some(200),
                ended_us: Some(700),
                cause: Some(Cause::Interrupted),
                counts: (0, 0, 0, 0),
                refused_by: vec![(Cause::Interrupted, 1)],
                ..Want::default()
            },
        },
        Case {
            name: "a policy close before the wanted event is a rejection",
            accepted: message("ready"),
            close: &[1008],
            events: vec![
                Ev::Upgraded(200),
                Ev::Data(300, Some("hello")),
                Ev::ServerClose(1008),
                Ev::Ended(Cause::ServerClose(1008), 400),
            ],
            want: Want {
                outcome: Outcome::Rejected,
                upgraded_us: Some(200),
                last_frame_us: Some(300),
                ended_us: Some(400),
                cause: Some(Cause::ServerClose(1008)),
                clean_end: true,
                counts: (0, 1, 0, 0),
                refused_by: vec![(Cause::ServerClose(1008), 1)],
                data_accepted: vec![false],
                ..Want::default()
            },
        },
    ];
    check(&cases);
}

#[test]
fn dial_failures_and_aborts() {
    let rules = [
        AcceptRule::Upgrade,
        AcceptRule::FirstFrame,
        message("ready"),
    ];
    // The same under every accept rule: nothing here ever reached the upgrade.
    for accepted in rules {
        let cases = [
            Case {
                name: "an HTTP status is a rejection",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::DialFailed(Cause::Http(409), true, 300)],
                want: Want {
                    outcome: Outcome::Rejected,
                    ended_us: Some(300),
                    cause: Some(Cause::Http(409)),
                    counts: (0, 1, 0, 0),
                    refused_by: vec![(Cause::Http(409), 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "any HTTP status the dialer calls a refusal is a rejection (even 500)",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::DialFailed(Cause::Http(500), true, 300)],
                want: Want {
                    outcome: Outcome::Rejected,
                    ended_us: Some(300),
                    cause: Some(Cause::Http(500)),
                    counts: (0, 1, 0, 0),
                    refused_by: vec![(Cause::Http(500), 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "an upgrade timeout is a failure",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::DialFailed(Cause::Timeout("upgrade"), false, 300)],
                want: Want {
                    outcome: Outcome::Failed,
                    ended_us: Some(300),
                    cause: Some(Cause::Timeout("upgrade")),
                    counts: (0, 0, 1, 0),
                    refused_by: vec![(Cause::Timeout("upgrade"), 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "a refused TCP connect is a failure",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::DialFailed(Cause::Connect("refused".into()), false, 300)],
                want: Want {
                    outcome: Outcome::Failed,
                    ended_us: Some(300),
                    cause: Some(Cause::Connect("refused".into())),
                    counts: (0, 0, 1, 0),
                    refused_by: vec![(Cause::Connect("refused".into()), 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "our abort of the handshake: aborted, counted apart",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::Aborted(Cause::Aborted { rst: true }, 300)],
                want: Want {
                    outcome: Outcome::Aborted,
                    ended_us: Some(300),
                    cause: Some(Cause::Aborted { rst: true }),
                    counts: (0, 0, 0, 1),
                    refused_by: vec![(Cause::Aborted { rst: true }, 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "the run ending mid-dial: cut, counted apart",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::Cut(300)],
                want: Want {
                    outcome: Outcome::Cut,
                    ended_us: Some(300),
                    cause: Some(Cause::Interrupted),
                    counts: (0, 0, 0, 0),
                    refused_by: vec![(Cause::Interrupted, 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "the client out of file descriptors: a client error, not a failure",
                accepted: accepted.clone(),
                close: &[1008],
                events: vec![Ev::DialFailed(Cause::ClientFdLimit, false, 300)],
                want: Want {
                    outcome: Outcome::ClientError,
                    ended_us: Some(300),
                    cause: Some(Cause::ClientFdLimit),
                    counts: (0, 0, 0, 0),
                    refused_by: vec![(Cause::ClientFdLimit, 1)],
                    ..Want::default()
                },
            },
            Case {
                name: "an invalid close code is a failure named by its code, even if listed",
                accepted: accepted.clone(),
                close: &[1008, 1005],
                events: vec![Ev::ServerClose(1005)],
                want: Want {
                    outcome: Outcome::Failed,
                    cause: Some(Cause::InvalidClose(1005)),
                    clean_end: true,
                    counts: (0, 0, 1, 0),
                    refused_by: vec![(Cause::InvalidClose(1005), 1)],
                    ..Want::default()
                },
            },
        ];
        check(&cases);
    }
}

#[test]
fn counters_add_up_over_attempts() {
    // A connection's attempts, counted when it ends: a refusal, a retry accepted, a refusal.
    let rules = rules(AcceptRule::FirstFrame, &[1008]);
    let judge = Judge { rules: &rules };
    let mut c = Counters::default();
    let mut first = Attempt::new(0);
    judge.dial_failed(&mut first, Cause::Http(409), true, 10);
    let mut second = Attempt::new(20);
    judge.upgraded(&mut second, 30);
    assert!(judge.data(&mut second, 40, None));
    judge.ended(&mut second, Cause::ClientClose(1000), 50);
    let mut third = Attempt::new(60);
    judge.dial_failed(&mut third, Cause::Http(409), true, 70);
    for a in [&first, &second, &third] {
        c.count_attempt(a);
    }
    assert_eq!(c.attempted, 3);
    assert_eq!((c.accepted, c.rejected, c.failed, c.aborted), (1, 2, 0, 0));
    assert_eq!(c.refused_by.get(&Cause::Http(409)), Some(&2));
    assert_eq!(c.ended_by.get(&Cause::ClientClose(1000)), Some(&1));
}

#[test]
fn indeterminate_attempts() {
    struct Row {
        name: &'static str,
        attempt: Attempt,
        indeterminate: bool,
    }
    let with = |outcome: Outcome, cause: Option<Cause>, upgraded: Option<u64>| Attempt {
        outcome,
        cause,
        upgraded_us: upgraded,
        ended_us: Some(500),
        ..Attempt::new(0)
    };
    let rows = [
        Row {
            name: "our abort, no answer",
            attempt: with(Outcome::Aborted, Some(Cause::Aborted { rst: false }), None),
            indeterminate: true,
        },
        Row {
            name: "our abort after the 101 arrived",
            attempt: with(
                Outcome::Aborted,
                Some(Cause::Aborted { rst: true }),
                Some(9),
            ),
            indeterminate: true,
        },
        Row {
            name: "cut by the run's end mid-dial",
            attempt: with(Outcome::Cut, Some(Cause::Interrupted), None),
            indeterminate: true,
        },
        Row {
            name: "the client out of file descriptors: never reached the server",
            attempt: with(Outcome::ClientError, Some(Cause::ClientFdLimit), None),
            indeterminate: false,
        },
        Row {
            name: "upgrade timed out",
            attempt: with(Outcome::Failed, Some(Cause::Timeout("upgrade")), None),
            indeterminate: true,
        },
        Row {
            name: "reset mid-handshake",
            attempt: with(Outcome::Failed, Some(Cause::Reset), None),
            indeterminate: true,
        },
        Row {
            name: "reset after the 101: the client knows it was upgraded",
            attempt: with(Outcome::Failed, Some(Cause::Reset), Some(9)),
            indeterminate: false,
        },
        Row {
            name: "connect refused: the server never saw the request",
            attempt: with(Outcome::Failed, Some(Cause::Connect("x".into())), None),
            indeterminate: false,
        },
        Row {
            name: "an HTTP refusal is a known answer",
            attempt: with(Outcome::Rejected, Some(Cause::Http(409)), None),
            indeterminate: false,
        },
        Row {
            name: "accepted",
            attempt: with(Outcome::Accepted, Some(Cause::Reset), Some(9)),
            indeterminate: false,
        },
    ];
    for row in rows {
        assert_eq!(
            row.attempt.indeterminate(),
            row.indeterminate,
            "case {:?}",
            row.name
        );
    }
}

/// The `ended` doc: "an attempt that died on its own failed". A TLS error on the open
/// connection is the connection dying, not us closing, yet `ended` lists only Reset,
/// Protocol, Oversized and ServerClose as deaths, so a pending attempt ended by
/// `Cause::Tls` is judged accepted. Latent today: `classify` maps `WsError::Tls`, but the
/// rustls stream's errors reach tungstenite as I/O errors (→ Reset).
#[test]
fn tls_error_before_first_frame_is_a_failure() {
    let cases = [Case {
        name: "tls error before the first frame: died on its own",
        accepted: AcceptRule::FirstFrame,
        close: &[1008],
        events: vec![Ev::Upgraded(200), Ev::Ended(Cause::Tls, 300)],
        want: Want {
            outcome: Outcome::Failed,
            upgraded_us: Some(200),
            ended_us: Some(300),
            cause: Some(Cause::Tls),
            counts: (0, 0, 1, 0),
            refused_by: vec![(Cause::Tls, 1)],
            ..Want::default()
        },
    }];
    check(&cases);
}

#[test]
fn load_shedding_is_a_counted_refusal_and_a_200_a_failure() {
    let rules = rules(AcceptRule::FirstFrame, &[1008]);
    let judge = Judge { rules: &rules };
    let mut c = Counters::default();
    // HTTP 429 and 503: rejected (as every 4xx/5xx), and shed.
    for status in [429, 503] {
        let mut a = Attempt::new(0);
        judge.dial_failed(&mut a, Cause::Http(status), true, 10);
        assert_eq!(a.outcome, Outcome::Rejected, "{status}");
        assert!(a.is_shed(), "{status}");
        c.count_attempt(&a);
    }
    // A close 1013 (try again later) after the 101, before acceptance: rejected, shed,
    // though `reject.close` does not list it.
    let mut closed = Attempt::new(0);
    judge.upgraded(&mut closed, 5);
    judge.server_close(&mut closed, Cause::ServerClose(1013), false);
    judge.ended(&mut closed, Cause::ServerClose(1013), 6);
    assert_eq!(closed.outcome, Outcome::Rejected);
    assert!(closed.is_shed());
    c.count_attempt(&closed);
    // A 1013 on a connection already accepted stays accepted (how it ended), and is
    // counted apart: the server shed it after acceptance.
    let mut served = Attempt::new(0);
    judge.upgraded(&mut served, 5);
    assert!(judge.data(&mut served, 6, None));
    judge.server_close(&mut served, Cause::ServerClose(1013), false);
    judge.ended(&mut served, Cause::ServerClose(1013), 7);
    assert_eq!(served.outcome, Outcome::Accepted);
    assert!(!served.is_shed() && served.shed_after_acceptance());
    c.count_attempt(&served);
    // A 200 (or a redirect) to the upgrade: no refusal, a failure; not shed.
    for status in [200, 301] {
        let mut a = Attempt::new(0);
        judge.dial_failed(&mut a, Cause::Http(status), true, 10);
        assert_eq!(a.outcome, Outcome::Failed, "{status}");
        assert!(!a.is_shed(), "{status}");
        c.count_attempt(&a);
    }
    // Other refusals stay what they were.
    let mut auth = Attempt::new(0);
    judge.dial_failed(&mut auth, Cause::Http(401), true, 10);
    assert_eq!(auth.outcome, Outcome::Rejected);
    assert!(!auth.is_shed());
    c.count_attempt(&auth);
    assert_eq!(c.attempted, 7);
    assert_eq!((c.shed, c.shed_after_acceptance), (3, 1));
    assert_eq!((c.accepted, c.rejected, c.failed), (1, 4, 2));
    assert_eq!(c.refused_by.get(&Cause::Http(200)), Some(&1));
    assert_eq!(c.refused_by.get(&Cause::ServerClose(1013)), Some(&1));
    assert_eq!(c.ended_by.get(&Cause::ServerClose(1013)), Some(&1));
}

/// A close code the scenario declares as shedding (`reject.shed`) before acceptance is
/// judged as a 1013 is: rejected, marked, counted as shed. The same code undeclared fails
/// the attempt; after acceptance it is how the connection ended, and, declared, counted
/// as shed after acceptance.
#[test]
fn a_declared_shed_code_sheds_like_1013() {
    let mut rules = rules(AcceptRule::FirstFrame, &[1008]);
    rules.reject.shed = vec![4429];
    let undeclared = self::rules(AcceptRule::FirstFrame, &[1008]);
    let close_before_acceptance = |rules: &SessionOracles| {
        let judge = Judge { rules };
        let mut a = Attempt::new(0);
        judge.upgraded(&mut a, 5);
        judge.server_close(&mut a, Cause::ServerClose(4429), false);
        judge.ended(&mut a, Cause::ServerClose(4429), 6);
        a
    };
    let mut c = Counters::default();
    let shed = close_before_acceptance(&rules);
    assert_eq!(shed.outcome, Outcome::Rejected);
    assert!(shed.declared_shed && shed.is_shed());
    c.count_attempt(&shed);
    let failed = close_before_acceptance(&undeclared);
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(!failed.declared_shed && !failed.is_shed());
    c.count_attempt(&failed);
    // Accepted first: the code is how it ended, and the declared code sheds it then.
    let accepted_then_closed = |rules: &SessionOracles| {
        let judge = Judge { rules };
        let mut a = Attempt::new(0);
        judge.upgraded(&mut a, 5);
        assert!(judge.data(&mut a, 6, None));
        judge.server_close(&mut a, Cause::ServerClose(4429), false);
        judge.ended(&mut a, Cause::ServerClose(4429), 7);
        a
    };
    let served = accepted_then_closed(&rules);
    assert_eq!(served.outcome, Outcome::Accepted);
    assert!(!served.is_shed() && served.shed_after_acceptance());
    c.count_attempt(&served);
    let closed = accepted_then_closed(&undeclared);
    assert_eq!(closed.outcome, Outcome::Accepted);
    assert!(!closed.shed_after_acceptance(), "undeclared: no shedding");
    let judge = Judge { rules: &rules };
    // 1013 stays shed without being declared, and is not marked as declared.
    let mut again = Attempt::new(0);
    judge.upgraded(&mut again, 5);
    judge.server_close(&mut again, Cause::ServerClose(1013), false);
    assert!(again.is_shed() && !again.declared_shed);
    c.count_attempt(&again);
    assert_eq!((c.shed, c.rejected, c.failed, c.accepted), (2, 2, 1, 1));
    assert_eq!(c.shed_after_acceptance, 1);
}

/// A close code the scenario declares as a takeover (`reject.replaced`) after acceptance
/// leaves the attempt accepted, marked and counted as replaced; before acceptance it
/// rejects the attempt (marked too, not shed). Undeclared, the same code is how an
/// accepted connection ended, or a failure before acceptance, as before.
#[test]
fn a_declared_takeover_code_marks_the_attempt_replaced() {
    let mut rules = rules(AcceptRule::FirstFrame, &[1008]);
    rules.reject.replaced = vec![4409];
    let undeclared = self::rules(AcceptRule::FirstFrame, &[1008]);
    let closed = |rules: &SessionOracles, accepted: bool| {
        let judge = Judge { rules };
        let mut a = Attempt::new(0);
        judge.upgraded(&mut a, 5);
        if accepted {
            assert!(judge.data(&mut a, 6, None));
        }
        judge.server_close(&mut a, Cause::ServerClose(4409), false);
        judge.ended(&mut a, Cause::ServerClose(4409), 7);
        a
    };
    let mut c = Counters::default();
    let replaced = closed(&rules, true);
    assert_eq!(replaced.outcome, Outcome::Accepted);
    assert!(replaced.is_replaced() && !replaced.shed_after_acceptance());
    c.count_attempt(&replaced);
    let early = closed(&rules, false);
    assert_eq!(early.outcome, Outcome::Rejected);
    assert!(early.is_replaced() && !early.is_shed());
    c.count_attempt(&early);
    assert_eq!((c.replaced, c.accepted, c.rejected, c.shed), (2, 1, 1, 0));
    let ended = closed(&undeclared, true);
    assert_eq!(ended.outcome, Outcome::Accepted);
    assert!(!ended.is_replaced());
    let failed = closed(&undeclared, false);
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(!failed.is_replaced());
    // Any other code is not a takeover.
    let judge = Judge { rules: &rules };
    let mut other = Attempt::new(0);
    judge.upgraded(&mut other, 5);
    assert!(judge.data(&mut other, 6, None));
    judge.server_close(&mut other, Cause::ServerClose(4000), false);
    assert!(!other.is_replaced());
}

/// A bad token closed before acceptance with a code that states a refusal is refused in
/// the server's own words even when `reject.close` does not list the code (graphql-ws's
/// 4401 for a token it will not take); a valid token so closed fails, and a code that
/// states a fault (1011) or nothing (1000) fails either way; under `reject.policy =
/// "strict"` only a listed code refuses.
#[test]
fn a_bad_token_closed_with_an_unlisted_refusal_code_is_refused() {
    let rules = rules(AcceptRule::FirstFrame, &[1008]);
    let judge = Judge { rules: &rules };
    let closed = |code: u16, bad_token: bool| {
        let mut a = Attempt::new(0);
        judge.upgraded(&mut a, 5);
        judge.server_close(&mut a, Cause::ServerClose(code), bad_token);
        judge.ended(&mut a, Cause::ServerClose(code), 6);
        a.outcome
    };
    for code in [4401, 4403, 3000, 1008] {
        assert_eq!(closed(code, true), Outcome::Rejected, "{code}");
    }
    assert_eq!(closed(4401, false), Outcome::Failed, "a valid token");
    assert_eq!(closed(1008, false), Outcome::Rejected, "listed: as ever");
    for code in [1011, 1000, 1001] {
        assert_eq!(closed(code, true), Outcome::Failed, "{code}");
    }
    // Once accepted, a close is how it ended, not a refusal.
    let mut accepted = Attempt::new(0);
    judge.upgraded(&mut accepted, 5);
    assert!(judge.data(&mut accepted, 6, None));
    judge.server_close(&mut accepted, Cause::ServerClose(4401), true);
    assert_eq!(accepted.outcome, Outcome::Accepted);
    // The strict policy holds the server to the declared ways: an unlisted code fails.
    let mut strict = rules.clone();
    strict.reject.policy = crate::model::RejectPolicy::Strict;
    let judge = Judge { rules: &strict };
    let mut a = Attempt::new(0);
    judge.upgraded(&mut a, 5);
    judge.server_close(&mut a, Cause::ServerClose(4401), true);
    assert_eq!(a.outcome, Outcome::Failed, "strict: 4401 unlisted");
    let mut a = Attempt::new(0);
    judge.upgraded(&mut a, 5);
    judge.server_close(&mut a, Cause::ServerClose(1008), true);
    assert_eq!(a.outcome, Outcome::Rejected, "strict: 1008 listed");
}

/// Under the first-frame rule an error event accepts nothing: the next frame may, a
/// Close refuses as any Close would, and an attempt we then close ourselves failed (the
/// server's first word was seen, and it was an error), where a silent one counts as
/// accepted as before.
#[test]
fn an_error_event_as_the_first_frame_accepts_nothing() {
    let first_frame = rules(AcceptRule::FirstFrame, &[1008]);
    let judge = Judge {
        rules: &first_frame,
    };
    let errored = || {
        let mut a = Attempt::new(0);
        judge.upgraded(&mut a, 5);
        assert!(!judge.error_frame(&mut a, 6, "error"));
        assert_eq!(a.outcome, Outcome::Pending);
        a
    };
    let mut served = errored();
    assert!(
        judge.data(&mut served, 7, Some("welcome")),
        "the next frame accepts"
    );
    let mut refused = errored();
    judge.server_close(&mut refused, Cause::ServerClose(1008), true);
    assert_eq!(refused.outcome, Outcome::Rejected);
    let mut closed = errored();
    judge.ended(&mut closed, Cause::ClientClose(1000), 8);
    assert_eq!(closed.outcome, Outcome::Failed);
    let mut silent = Attempt::new(0);
    judge.upgraded(&mut silent, 5);
    judge.ended(&mut silent, Cause::ClientClose(1000), 8);
    assert_eq!(
        silent.outcome,
        Outcome::Accepted,
        "no frame to see: as before"
    );
    // A message rule naming another kind is not met by it either way.
    let by_message = rules(
        AcceptRule::Message {
            event: "welcome".into(),
        },
        &[1008],
    );
    let judge = Judge { rules: &by_message };
    let mut a = Attempt::new(0);
    judge.upgraded(&mut a, 5);
    assert!(!judge.error_frame(&mut a, 6, "error"));
    assert!(!a.error_before_acceptance);
}
