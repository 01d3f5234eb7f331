//! The race battery (`scenarios/hunt.toml`): against the built-in server with a planted
//! bug it finds the bug within a bounded budget and the repro replays at >= 9/10 (and
//! never against the correct server); against the correct server the whole battery finds
//! nothing.
//!
//! For CI time the cases are five planted bugs (two of the old ones, and the three new
//! variants), each run with the battery narrowed (`[battery] families`) to the family that
//! catches it; the README's table is measured with the whole battery, for every bug.
//! Planted windows are widened to 50 ms, as in `tests/races.rs`, so a busy 2-core machine
//! still lands inside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use stampede::hunt::battery::{self, BatteryOptions, BatteryOutcome, FamilyEnd, ProbeHooks};
use stampede::hunt::{Found, Runner};
use stampede::model::OracleKind;
use stampede::reference::Bug;
use stampede::run::{RunOptions, Target};
use stampede::scenario::{load_battery_str, Battery, Family};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(50);
/// The battery's own `--budget` in every case.
const BUDGET: Duration = Duration::from_secs(60);
/// Every case, its extra replays included, ends within this whatever happens.
const BOUND: Duration = Duration::from_secs(150);

fn shipped() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hunt.toml");
    std::fs::read_to_string(path).unwrap()
}

/// The shipped battery, narrowed to `families` (all when empty).
fn battery(families: &[Family]) -> Battery {
    let mut text = shipped();
    if !families.is_empty() {
        let names: Vec<String> = families.iter().map(|f| format!("{:?}", f.name())).collect();
        text.push_str(&format!("families = [{}]\n", names.join(", ")));
    }
    load_battery_str(&text, "hunt.toml").unwrap().unwrap()
}

async fn run(battery: &Battery, bug: Option<Bug>, out: &Path) -> BatteryOutcome {
    let target = Target::Reference {
        bug,
        window: Some(WINDOW),
    };
    run_against(battery, target, out, BUDGET).await
}

async fn run_against(
    battery: &Battery,
    target: Target,
    out: &Path,
    budget: Duration,
) -> BatteryOutcome {
    let hooks = ProbeHooks::new(battery, 1);
    // Learning on, as `stampede hunt` runs it: the shipped battery declares no identity
    // field, so the identity families rely on the learned one.
    let run_opts = RunOptions {
        learn: true,
        ..RunOptions::default()
    };
    let runner = Runner::start(
        &target,
        &battery::calibration_plan(battery, 1),
        run_opts,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let opts = BatteryOptions {
        budget,
        seed: 1,
        out: out.to_path_buf(),
        confirm: 10,
    };
    let outcome = battery::run(battery, &runner, &opts, &hooks, &mut |_| {})
        .await
        .unwrap();
    runner.close().await;
    outcome
}

/// Replays `found` `times` times, each against a fresh built-in server (`bug` or the
/// correct one): how many reproduced its oracle. A fresh server per replay shows that the
/// repro carries its cause, not only the damage an earlier run left behind.
async fn fresh_replays(found: &Found, bug: Option<Bug>, times: u32) -> u32 {
    let mut reproduced = 0;
    for _ in 0..times {
        let plan = &found.repro.plan;
        let runner = Runner::reference(plan, bug, Some(WINDOW), CancellationToken::new())
            .await
            .unwrap();
        let rate = match &found.repro.health {
            // A broken-target finding reproduces when the rounds leave the probe failing.
            Some(health) => {
                runner
                    .measure_health(&health.plans(plan), &health.probe, 1, None, None)
                    .await
                    .unwrap()
                    .rate
            }
            None => runner
                .rate(plan, found.repro.oracle, 1, None)
                .await
                .unwrap(),
        };
        reproduced += rate.reproduced;
        runner.close().await;
    }
    reproduced
}

/// The battery narrowed to `family` finds `bug` through one of `oracles`, confirmed at
/// >= 9/10; the repro reproduces on fresh buggy servers and never on the correct one.
async fn finds(bug: Bug, family: Family, oracles: &[OracleKind]) {
    let check = async {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let outcome = run(&battery(&[family]), Some(bug), dir.path()).await;
        let took = started.elapsed();
        let report = &outcome.families[0];
        let FamilyEnd::Found(found) = &report.end else {
            panic!(
                "{bug}: the {} family found nothing: {:?}",
                family.name(),
                report.end
            )
        };
        assert!(
            oracles.contains(&found.repro.oracle),
            "{bug}: found {} instead",
            found.repro.oracle.name()
        );
        assert!(
            found.rate.runs == 10 && found.rate.reproduced >= 9,
            "{bug}: confirmed only {}",
            found.rate
        );
        assert!(found.path.exists(), "{bug}: the repro is written");
        assert!(
            took <= BUDGET + Duration::from_secs(5),
            "{bug}: {took:?} on a {BUDGET:?} budget"
        );
        assert_eq!(
            fresh_replays(found, Some(bug), 2).await,
            2,
            "{bug}: fresh buggy servers"
        );
        assert_eq!(
            fresh_replays(found, None, 1).await,
            0,
            "{bug}: the correct server"
        );
        eprintln!(
            "{bug}: {} found {} in {:.1}s, confirmed {}, {} connections",
            family.name(),
            found.repro.oracle.name(),
            took.as_secs_f64(),
            found.rate,
            found.repro.size()
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_battery_finds_nothing_on_the_correct_server() {
    let check = async {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(&battery(&[]), None, dir.path()).await;
        assert_eq!(outcome.families.len(), Family::ALL.len());
        for report in &outcome.families {
            assert!(
                matches!(report.end, FamilyEnd::Clean),
                "{}: {:?}",
                report.family.name(),
                report.end
            );
            assert!(!report.levels.is_empty());
        }
        let rendezvous = outcome
            .families
            .iter()
            .find(|r| r.family == Family::Rendezvous)
            .unwrap();
        assert_eq!(
            rendezvous.pressure(),
            320,
            "the rendezvous rises to 320 connections"
        );
        assert!(outcome.elapsed <= BUDGET + Duration::from_secs(5));
        eprintln!(
            "correct server: the whole battery clean in {:.1}s",
            outcome.elapsed.as_secs_f64()
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_token_collide_finds_token_check_then_act() {
    finds(
        Bug::TokenCheckThenAct,
        Family::SameToken,
        &[OracleKind::Exclusivity],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_send_finds_early_message_drop() {
    finds(
        Bug::EarlyMessageDrop,
        Family::EarlySend,
        &[OracleKind::Completeness],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_users_collide_finds_session_id_collision() {
    // The later user's events reach the earlier user's connection: that connection's
    // expectations never claim them (another request's), so learned identity does not judge
    // them (a correct broadcast looks the same); the later user's missing events do break
    // completeness. A declared identity field would name the leak itself.
    finds(
        Bug::SessionIdCollision,
        Family::DifferentUsers,
        &[OracleKind::Identity, OracleKind::Completeness],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rising_rendezvous_finds_mass_event_loss() {
    finds(
        Bug::MassEventLoss,
        Family::Rendezvous,
        &[OracleKind::Completeness],
    )
    .await;
}

/// A refused reconnect is a liveness violation (a clean refusal of a valid token) or a
/// completeness one (accepted, then closed with 1013 before the ack).
const REFUSED: [OracleKind; 2] = [OracleKind::Liveness, OracleKind::Completeness];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_handshakes_find_abort_leak() {
    finds(Bug::AbortLeak, Family::Abort, &REFUSED).await;
}

/// The damage accumulates (one leaked slot per abort, 32 slots): the abort family's
/// 64-abort level shows it inside one round, whose plan alone breaks a fresh server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rising_aborts_find_slot_leak() {
    // Found either by the connections the full slots refuse or, when a round ends before
    // they are tried, by the health probe after it (the target left broken).
    let oracles = [
        OracleKind::Liveness,
        OracleKind::Completeness,
        OracleKind::TargetHealth,
    ];
    finds(Bug::SlotLeak, Family::Abort, &oracles).await;
}

/// A rate limit (429 `Retry-After: 1`) answering the health probe between levels is the
/// server's load shedding: the probe waits as asked and the target is healthy, never
/// broken (a battery against a 40-per-second limit reported the target broken and
/// skipped families). A server still shedding when the wait runs out is neither.
#[tokio::test]
async fn a_rate_limited_probe_between_levels_is_waited_out_not_broken() {
    use stampede::hunt::battery::{Health, Hooks};
    tokio::time::timeout(BOUND, async {
        let b = battery(&[Family::Abort]);
        let hooks = ProbeHooks::new(&b, 1);
        // One upgrade, then 429 for 1.5 s (the probe is shed twice, then taken); or 503
        // for good.
        let window = common::RateLimit {
            admits: 1,
            sheds_for: Some(Duration::from_millis(1500)),
            answer: common::TOO_MANY,
        };
        let for_good = common::RateLimit {
            sheds_for: None,
            answer: common::UNAVAILABLE,
            ..window
        };
        for (limit, waited_out) in [(window, true), (for_good, false)] {
            let (url, _stop) = common::spawn_rate_limited(limit).await;
            let runner = Runner::start(
                &Target::Url(url),
                &battery::calibration_plan(&b, 1),
                RunOptions::default(),
                CancellationToken::new(),
            )
            .await
            .unwrap();
            let end = tokio::time::Instant::now() + Duration::from_secs(60);
            let first = hooks.probe_health(&runner, end).await.unwrap();
            assert_eq!(first, Health::Healthy, "the one upgrade it admits");
            let second = hooks.probe_health(&runner, end).await.unwrap();
            match second {
                Health::Healthy => assert!(waited_out, "{limit:?}"),
                Health::Shedding(shed) => {
                    assert!(
                        !waited_out && shed.unresolved && shed.times >= 2,
                        "{shed:?}"
                    );
                    assert!(shed.answer.contains("http_503"), "{}", shed.answer);
                }
                other => panic!("{limit:?}: load shedding read as {other:?}"),
            }
            runner.close().await;
        }
    })
    .await
    .expect("bounded");
}

/// The command: a battery file given to `hunt` prints one line per family and the summary,
/// and exits 1 on a find.
#[test]
fn the_hunt_command_runs_a_battery_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hunt.toml");
    std::fs::write(&file, shipped() + "families = [\"bad-tokens\"]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["hunt", file.to_str().unwrap(), "--bug", "accept-alg-none"])
        .args(["--bug-window", "50ms", "--budget", "60s", "-q", "-o"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("bad-tokens: found rejection_hygiene violation at level 1"),
        "{stdout}"
    );
    assert!(stdout.contains("battery summary"), "{stdout}");
    assert!(stdout.contains("1 family of 1 found something"), "{stdout}");
}

/// A correct graphql-transport-ws server, as the protocol requires it (enisdenjo/graphql-ws
/// PROTOCOL.md): the `graphql-transport-ws` subprotocol, `connection_init` carrying the
/// token (HS256, `exp` and `sub` required, no leeway), close 4403 for a bad token, the
/// ack 5 ms later (its `onConnect` lookup, read concurrently with later frames), close
/// 4401 for a `subscribe` that arrives before the ack, close 4408 when no init came within
/// 3 s, and any number of sessions per token. None of that is a race; the battery must
/// find nothing. The buggy variant has the ack race of graphql-ws #501: the connection
/// counts as acknowledged only 20 ms after its ack went out, so a `subscribe` sent right
/// after the ack is closed with 4401.
mod graphql_ws {
    use super::common::{spawn_server, TEST_SECRET};
    use futures_util::{SinkExt, StreamExt};
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    use serde_json::{json, Value};
    use std::time::Duration;
    use tokio::time::{sleep_until, Instant};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_util::sync::CancellationToken;

    const PROTOCOL: &str = "graphql-transport-ws";
    const INIT_TIMEOUT: Duration = Duration::from_secs(3);
    const LOOKUP: Duration = Duration::from_millis(5);
    /// The buggy variant's gap between the ack going out and the flag being set.
    const ACK_RACE: Duration = Duration::from_millis(20);

    fn subject(token: &str) -> Option<String> {
        let header = decode_header(token).ok()?;
        if !matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return None;
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let key = DecodingKey::from_secret(TEST_SECRET.as_bytes());
        let data = decode::<Value>(token, &key, &validation).ok()?;
        data.claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    async fn close(
        ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        code: u16,
        reason: &str,
    ) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        };
        let _ = ws.close(Some(frame)).await;
    }

    async fn serve(tcp: tokio::net::TcpStream, buggy: bool) {
        let callback = |req: &Request, mut resp: Response| {
            let offered = req
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
            if offered {
                resp.headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
            }
            Ok(resp)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        let init_deadline = Instant::now() + INIT_TIMEOUT;
        let mut init = false;
        let mut ack_due: Option<(Instant, String)> = None;
        // When the connection counts as acknowledged (None: not yet).
        let mut acknowledged_at: Option<Instant> = None;
        loop {
            let due = ack_due.as_ref().map(|(at, _)| *at);
            let frame = tokio::select! {
                frame = ws.next() => frame,
                _ = sleep_until(due.unwrap_or(init_deadline)), if due.is_some() || !init => {
                    if ack_due.take().is_some() {
                        let race = if buggy { ACK_RACE } else { Duration::ZERO };
                        acknowledged_at = Some(Instant::now() + race);
                        let ack = json!({ "type": "connection_ack" }).to_string();
                        if ws.send(Message::Text(ack.into())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    close(&mut ws, 4408, "Connection initialisation timeout").await;
                    return;
                }
            };
            let Some(Ok(Message::Text(text))) = frame else {
                if matches!(frame, Some(Ok(_))) {
                    continue;
                }
                return;
            };
            let msg: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            let acknowledged = acknowledged_at.is_some_and(|at| Instant::now() >= at);
            match msg.get("type").and_then(Value::as_str) {
                Some("connection_init") if !init => {
                    init = true;
                    let token = msg
                        .pointer("/payload/token")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match subject(token) {
                        Some(sub) => ack_due = Some((Instant::now() + LOOKUP, sub)),
                        None => {
                            close(&mut ws, 4403, "Forbidden").await;
                            return;
                        }
                    }
                }
                Some("connection_init") => {
                    close(&mut ws, 4429, "Too many initialisation requests").await;
                    return;
                }
                Some("subscribe") if !acknowledged => {
                    close(&mut ws, 4401, "Unauthorized").await;
                    return;
                }
                Some("subscribe") => {
                    let id = msg.get("id").cloned().unwrap_or(Value::Null);
                    let mut out = Vec::new();
                    for n in 1..=2 {
                        out.push(
                            json!({ "type": "next", "id": id, "payload": { "data": { "n": n } } }),
                        );
                    }
                    out.push(json!({ "type": "complete", "id": id }));
                    for m in out {
                        if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some("ping") => {
                    let pong = json!({ "type": "pong" }).to_string();
                    if ws.send(Message::Text(pong.into())).await.is_err() {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Starts the server (the buggy variant when `buggy`) on loopback: its URL and the
    /// stop token.
    pub async fn spawn(buggy: bool) -> (String, CancellationToken) {
        spawn_server(move |tcp| serve(tcp, buggy)).await
    }

    /// A scenario for it, as `scenarios/protocols/graphql-transport-ws.toml` writes one,
    /// with the token in `placement` (TOML): `connection_init`, then a subscription.
    pub fn scenario_text(placement: &str) -> String {
        format!(
            r#"name = "gql-run"
seed = 1
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}
placement = {placement}
subprotocol = "graphql-transport-ws"

[oracles]
accepted = {{ message = "connection_ack" }}
reject = {{ close = [4403] }}

[[group]]
name = "subscribers"
users = 5
arrival = {{ ramp = "50ms" }}
steps = [
  {{ expect = "connection_ack", within = "1s" }},
  {{ send = {{ id = "s-{{{{conn}}}}", type = "subscribe", payload = {{ query = "subscription {{ ticks }}" }} }} }},
  {{ expect = "next+ complete", correlate = "id", within = "2s" }},
  {{ close = 1000 }},
]

[hunt]
rounds = 5
"#
        )
    }

    /// Where the server reads the token: a `connection_init` payload.
    pub const IN_INIT: &str =
        r#"{ first_message = { type = "connection_init", payload = { token = "{{token}}" } } }"#;

    /// A battery file for it, narrowed to `families`.
    pub fn battery_text(families: &[&str]) -> String {
        let names: Vec<String> = families.iter().map(|f| format!("{f:?}")).collect();
        format!(
            r#"name = "gql"
seed = 1
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}
placement = {{ first_message = {{ type = "connection_init", payload = {{ token = "{{{{token}}}}" }} }} }}
headers = {{ "Sec-WebSocket-Protocol" = "graphql-transport-ws" }}

[oracles]
accepted = {{ message = "connection_ack" }}
reject = {{ close = [4403] }}

[battery]
request = {{ id = "s-{{{{conn}}}}-{{{{run}}}}", type = "subscribe", payload = {{ query = "subscription {{ ticks }}" }} }}
ack = "connection_ack"
reply = "next+ complete"
correlate = "id"
within = "2s"
families = [{}]
"#,
            names.join(", ")
        )
    }
}

/// Against a correct graphql-transport-ws server the families that used to report its
/// policy as races find nothing: the 4401 closing a `subscribe` sent before the ack is a
/// stated refusal (early-send notes it as policy), several sessions per token are its
/// policy (same-token calibrates and leaves exclusivity out), and a `missing` token whose
/// init the server is still waiting for when the family stops waiting is not judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_graphql_ws_server_is_clean_and_its_policies_are_noted() {
    let check = async {
        let (url, stop) = graphql_ws::spawn(false).await;
        let text = graphql_ws::battery_text(&["same-token", "early-send", "bad-tokens"]);
        let battery = load_battery_str(&text, "gql.toml").unwrap().unwrap();
        assert!(!battery.declared_exclusive);
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&battery, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        assert_eq!(outcome.families.len(), 3);
        for report in &outcome.families {
            assert!(
                matches!(report.end, FamilyEnd::Clean),
                "{}: {:?} {:?}",
                report.family.name(),
                report.end,
                report.policy
            );
            assert!(!report.levels.is_empty(), "{}", report.family.name());
        }
        let same = &outcome.families[0];
        assert!(
            same.policy
                .iter()
                .any(|p| p.contains("exclusivity not judged")),
            "{:?}",
            same.policy
        );
        let early = &outcome.families[1];
        assert!(
            early.policy.iter().any(|p| p.contains("close 4401")),
            "{:?}",
            early.policy
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

/// The same file with `[oracles] exclusive` declared: the declared policy is judged as
/// written, without calibration, so the server's second session per token is a find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_exclusivity_is_judged_without_calibration() {
    let check = async {
        let (url, stop) = graphql_ws::spawn(false).await;
        let text = graphql_ws::battery_text(&["same-token"]).replace(
            "reject = { close = [4403] }",
            "reject = { close = [4403] }\nexclusive = { max_live = 1 }",
        );
        let battery = load_battery_str(&text, "gql.toml").unwrap().unwrap();
        assert!(battery.declared_exclusive);
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&battery, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let report = &outcome.families[0];
        assert!(report.policy.is_empty(), "{:?}", report.policy);
        let FamilyEnd::Found(found) = &report.end else {
            panic!("expected a find: {:?}", report.end)
        };
        assert_eq!(found.repro.oracle, OracleKind::Exclusivity);
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

/// The buggy variant: its first exchange (the health probe's) hits the ack race itself,
/// so the probe fails before any level. A target never seen healthy was not left broken
/// by the battery: the family runs and finds the race (a `subscribe` right after the ack
/// closed with 4401), confirmed, and says the probe never passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_ack_race_is_found_though_the_probe_never_passes() {
    let check = async {
        let (url, stop) = graphql_ws::spawn(true).await;
        let text = graphql_ws::battery_text(&["different-users", "early-send"]);
        let battery = load_battery_str(&text, "gql.toml").unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&battery, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        assert!(!outcome.broken(), "{:?}", outcome.families[0].end);
        assert_eq!(outcome.families.len(), 2, "the battery went on");
        let report = &outcome.families[0];
        let FamilyEnd::Found(found) = &report.end else {
            panic!("expected the ack race: {:?}", report.end)
        };
        assert_eq!(found.repro.oracle, OracleKind::Completeness);
        assert!(found.rate.reproduced >= 9, "confirmed {}", found.rate);
        let evidence = &found.repro.evidence[0];
        assert!(evidence.seen.contains("4401"), "{evidence:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("health probe failed")),
            "{:?}",
            report.notes
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

/// A token placed where the server never reads it (an upgrade header, for a server that
/// reads `connection_init`) against a correct graphql-transport-ws server: the script's
/// `subscribe`, sent once the ack it waited for never came, is closed 4401 on every
/// connection and no connection is accepted. That is a misconfiguration, never a race:
/// the run says AUTH MISCONFIGURED with the close and the placement, the hunt stops
/// without a repro, and the battery's early-send family (whose probe never saw a token
/// accepted) does not call the 4401s the server's policy. The token where the server
/// reads it, against the server with the ack race, is still the race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_graphql_ws_server_never_reads_is_no_race() {
    use stampede::cli::error::{exit, of_run};
    use stampede::hunt::{HuntOptions, Short};
    use stampede::model::Verdict;
    let check = async {
        let (url, stop) = graphql_ws::spawn(false).await;
        let s = common::scenario("gql.toml", &graphql_ws::scenario_text("\"header\""));
        let outcome = common::run(&s, Some(url.clone()), None).await;
        let summary = &outcome.results.summary;
        assert_eq!(summary.counters.accepted, 0);
        assert_eq!(
            summary.verdict,
            Verdict::AuthMisconfigured,
            "{:?}",
            summary.hint
        );
        let hint = summary.hint.as_deref().unwrap_or_default();
        assert!(
            hint.contains("server_close_4401 ×5, reason \"Unauthorized\"")
                && hint.contains("the upgrade header Authorization: [auth] placement"),
            "{hint}"
        );
        assert_eq!(of_run(summary), exit::AUTH_MISCONFIGURED);

        let dir = tempfile::tempdir().unwrap();
        let runner = Runner::start(
            &Target::Url(url.clone()),
            &stampede::plan::build(&s, 1),
            RunOptions::default(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let opts = HuntOptions {
            budget: Duration::from_secs(30),
            seed: 1,
            out: dir.path().to_path_buf(),
            confirm: 3,
        };
        let hunted = stampede::hunt::hunt(&s, &runner, &opts, &mut |_| {})
            .await
            .unwrap();
        runner.close().await;
        assert!(hunted.found.is_none(), "{:?}", hunted.found);
        let Some(Short::Unjudged(stopped)) = &hunted.short else {
            panic!("the hunt says why it stopped: {:?}", hunted.short);
        };
        assert_eq!(stopped.verdict, Verdict::AuthMisconfigured);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no repro"
        );

        let text = graphql_ws::battery_text(&["early-send"]).replace(
            "placement = { first_message = { type = \"connection_init\", payload = { token = \"{{token}}\" } } }",
            "placement = \"header\"",
        );
        assert!(text.contains("placement = \"header\""), "{text}");
        let battery = load_battery_str(&text, "gql.toml").unwrap().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&battery, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let early = &outcome.families[0];
        assert!(early.policy.is_empty(), "{:?}", early.policy);
        assert_eq!(
            battery::unjudged_verdict(&early.end),
            Some(Verdict::AuthMisconfigured),
            "{:?}",
            early.end
        );
        assert!(outcome.found().next().is_none() && outcome.suspects().next().is_none());

        let (url, stop) = graphql_ws::spawn(true).await;
        let s = common::scenario("gql.toml", &graphql_ws::scenario_text(graphql_ws::IN_INIT));
        let outcome = common::run(&s, Some(url), None).await;
        stop.cancel();
        let summary = &outcome.results.summary;
        assert_eq!(summary.verdict, Verdict::Violations, "{:?}", summary.hint);
        assert!(
            outcome
                .results
                .violations
                .iter()
                .any(|v| v.oracle == OracleKind::Completeness && v.seen.contains("4401")),
            "{:#?}",
            outcome.results.violations
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

/// A find no replay confirmed (here `--times 0`: none asked for) is an unconfirmed
/// suspect, not a find: the summary says so and the exit code is 4 (inconclusive).
#[test]
fn an_unconfirmed_find_is_a_suspect_and_exits_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hunt.toml");
    std::fs::write(&file, shipped() + "families = [\"bad-tokens\"]\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["hunt", file.to_str().unwrap(), "--bug", "accept-alg-none"])
        .args([
            "--bug-window",
            "50ms",
            "--budget",
            "60s",
            "--times",
            "0",
            "-q",
        ])
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("bad-tokens: unconfirmed suspect"),
        "{stdout}"
    );
    assert!(
        stdout.contains("suspect rejection_hygiene (unconfirmed 0/0)"),
        "{stdout}"
    );
    assert!(!stdout.contains("FOUND"), "{stdout}");
    assert!(
        stdout.contains("0 families of 1 found something; 1 unconfirmed suspect"),
        "{stdout}"
    );
    // The suspect line names its own repro to replay, not a placeholder.
    let repro = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("repro "))
        .and_then(|rest| rest.split(" (replay it:").next())
        .unwrap_or_else(|| panic!("no repro path in:\n{stdout}"));
    assert!(
        stdout.contains(&format!("(replay it: stampede replay {repro})")),
        "{stdout}"
    );
    // `--json` says what the exit code says.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["hunt", file.to_str().unwrap(), "--bug", "accept-alg-none"])
        .args(["--bug-window", "50ms", "--budget", "60s", "--times", "0"])
        .args(["-q", "--json", "-o"])
        .arg(dir.path().join("out-json"))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(json["verdict"], "inconclusive", "{json:#}");
    assert_eq!(out.status.code(), Some(4), "{json:#}");
}

/// `stampede replay` judges a repro as the hunt that found it judged: an early-send repro
/// records the family's policy rule, so against a correct graphql-transport-ws server
/// (which closes 4401 a `subscribe` sent before its ack: its policy) its replays
/// reproduce nothing, exit 0. The same plan in a repro without the rule (as written before
/// repros recorded it) never reproduces either: with no connection accepted, its runs
/// cannot tell that policy from a misconfiguration, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_applies_the_policy_rule_of_the_hunt_that_found_the_repro() {
    let check = async {
        let (url, stop) = graphql_ws::spawn(false).await;
        let text = graphql_ws::battery_text(&["early-send"]);
        let battery = load_battery_str(&text, "gql.toml").unwrap().unwrap();
        let level = battery.levels(Family::EarlySend).unwrap().remove(0);
        let s = &level.scenario;
        let dir = tempfile::tempdir().unwrap();
        let repro = |policy| stampede::hunt::Repro {
            policy,
            ..stampede::hunt::Repro::for_plan(
                s,
                1,
                stampede::plan::build(s, 1),
                url.clone(),
                OracleKind::Completeness,
            )
        };
        let replay = |path: std::path::PathBuf| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
                .arg("replay")
                .arg(path)
                .args(["--times", "2", "-q"])
                // The repro does not store the literal secret.
                .env("STAMPEDE_JWT_SECRET", common::TEST_SECRET)
                .kill_on_drop(true)
                .output()
        };
        let with_rule = repro(battery::excuse(Family::EarlySend));
        assert_eq!(with_rule.policy, Some(stampede::hunt::Excuse::RefusalClose));
        let path = with_rule.save(&dir.path().join("rule")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""policy": "refusal_close""#), "{text}");
        let out = replay(path).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("violation 0/2 times"), "{stdout}");

        // Without the rule, nothing says the target takes these tokens: a run in which
        // every connection was closed before acceptance judged nothing, and is no
        // reproduction (exit 6, auth misconfigured, as the run itself says). On a busy
        // machine a `subscribe` may leave late enough to follow the ack, and that
        // connection is accepted and judged: a replay in which that happened reproduces
        // nothing. Either way the violation is never reproduced.
        let path = repro(None).save(&dir.path().join("old")).unwrap();
        let out = replay(path).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains("violation 1/") && !stdout.contains("violation 2/"),
            "{stdout}"
        );
        match out.status.code() {
            // The result line, on stdout as `run`'s verdict is. Which replay stops
            // depends on whether an earlier one judged a late `subscribe`.
            Some(6) => assert!(
                stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with("stopped: replay ")
                        && l.contains(" was auth_misconfigured")),
                "{stdout}{stderr}"
            ),
            Some(0) => assert!(stdout.contains("violation 0/2 times"), "{stdout}{stderr}"),
            code => panic!("exit {code:?}:\n{stdout}{stderr}"),
        }
        stop.cancel();
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}

/// A battery none of whose families could judge the target (every upgrade answered 404)
/// ends with that verdict's code, as a run does: 5, not 4 (inconclusive).
#[test]
fn a_battery_that_judged_nothing_exits_with_the_targets_verdict() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A plain HTTP server answering 404 to everything; ends with the test process.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hunt.toml");
    std::fs::write(
        &file,
        shipped() + "families = [\"same-token\", \"bad-tokens\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["hunt", file.to_str().unwrap(), "--target"])
        .arg(format!("ws://127.0.0.1:{port}/ws"))
        .args(["--budget", "60s", "-q", "-o"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
}

/// A battery whose budget ran out before most families judged a round (a 1 s budget for
/// seven families) did not finish: exit 7 (incomplete), never 0 as if every family were
/// clean, even when the families that ran were.
#[test]
fn a_battery_the_budget_left_unfinished_is_incomplete_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["hunt", "scenarios/hunt.toml", "--reference"])
        .args(["--budget", "1s", "-q", "-o"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("budget ran out"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
}

/// A server that sheds bad tokens instead of judging them: the golden-path fake behind a
/// token check (HS256 with the test secret, `exp` and `sub` required, no leeway) that
/// answers a token it does not take with HTTP 429, or, past `shed` of them, 401. Shedding
/// by count, not by clock, so which attempts are shed does not depend on how busy the
/// machine is.
mod sheds_bad_tokens {
    use super::common::{serve_fake, spawn_server, unverified_sub, Fault, TEST_SECRET};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_util::sync::CancellationToken;

    /// Whether the server takes `token`.
    fn takes(token: &str) -> bool {
        use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let key = DecodingKey::from_secret(TEST_SECRET.as_bytes());
        decode::<serde_json::Value>(token, &key, &validation).is_ok()
    }

    /// Serves one connection: a token it takes gets the golden path; one it does not, 429
    /// while fewer than `shed` were shed (`None`: every one), else 401.
    async fn serve(tcp: tokio::net::TcpStream, shed: Option<u32>, turned_away: Arc<AtomicU32>) {
        let mut sub = String::new();
        let callback = |req: &Request, resp: Response| {
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if takes(token) {
                sub = unverified_sub(token).unwrap_or_default();
                return Ok(resp);
            }
            let n = turned_away.fetch_add(1, Ordering::SeqCst);
            let status: u16 = if shed.is_none_or(|shed| n < shed) {
                429
            } else {
                401
            };
            let mut refusal = ErrorResponse::new(None);
            *refusal.status_mut() = status.try_into().unwrap();
            Err(refusal)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        serve_fake(ws, sub, Fault::None).await;
    }

    /// The server, shedding `shed` bad tokens (`None`: every one) before it refuses them.
    pub async fn spawn(shed: Option<u32>) -> (String, CancellationToken) {
        let turned_away = Arc::new(AtomicU32::new(0));
        spawn_server(move |tcp| serve(tcp, shed, turned_away.clone())).await
    }

    /// The shipped battery narrowed to the bad-token family, through the header only
    /// (38 connections a round), signed with the test secret.
    pub fn battery_text() -> String {
        let shipped = super::shipped();
        let all = r#"placements = ["header", "query", "subprotocol"]"#;
        assert!(
            shipped.contains(all),
            "the shipped battery's placements moved"
        );
        shipped.replace(all, r#"placements = ["header"]"#)
            + &format!(
                "families = [\"bad-tokens\"]\n\n[auth]\nsecret = {{ value = \"{TEST_SECRET}\" }}\n"
            )
    }
}

/// Shedding is the server saying "not now": neither a refusal nor an acceptance, so bad
/// tokens the server shed were never judged. A bad-token family whose round saw most of its
/// bad tokens shed (here every one: the server takes the valid ones) ends unjudged,
/// inconclusive, saying so, never clean; one that saw a few shed among many refused is
/// judged (clean). A battery reported `bad-tokens: clean` and exited 0 against a server
/// that answered 429 to every attempt of the round, its bad tokens included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_the_server_shed_are_never_judged_clean() {
    use stampede::hunt::Short;
    use stampede::model::Verdict;
    tokio::time::timeout(BOUND, async {
        let b = load_battery_str(&sheds_bad_tokens::battery_text(), "hunt.toml")
            .unwrap()
            .unwrap();
        // Every bad token shed.
        let (url, stop) = sheds_bad_tokens::spawn(None).await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&b, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let report = &outcome.families[0];
        let FamilyEnd::Short(Short::Unjudged(why)) = &report.end else {
            panic!("shed bad tokens read as {:?}", report.end)
        };
        assert_eq!(why.verdict, Verdict::Inconclusive, "{}", why.hint);
        assert!(
            why.hint.contains("the bad tokens were never judged")
                && why
                    .hint
                    .contains("of the 34 bad-token attempts under load (http_429"),
            "{}",
            why.hint
        );
        assert_eq!(report.levels[0].judged, 0, "{:?}", report.levels);
        assert!(
            report.shed.shed >= 30 && report.shed.attempted == 38,
            "{:?}",
            report.shed
        );
        // Three bad tokens shed, the rest refused with 401: judged, and clean.
        let (url, stop) = sheds_bad_tokens::spawn(Some(3)).await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&b, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let report = &outcome.families[0];
        assert!(matches!(report.end, FamilyEnd::Clean), "{:?}", report.end);
        assert_eq!(report.shed.shed, 3, "{:?}", report.shed);
    })
    .await
    .expect("bounded");
}

/// The command: a battery whose bad tokens were shed exits 4 (inconclusive), not 0, and
/// `--json` says the family was unjudged, why, and how many attempts the server shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_battery_whose_bad_tokens_were_shed_exits_inconclusive() {
    tokio::time::timeout(BOUND, async {
        let (url, stop) = sheds_bad_tokens::spawn(None).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hunt.toml");
        std::fs::write(&file, sheds_bad_tokens::battery_text()).unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["hunt", file.to_str().unwrap(), "--target", &url])
            .args(["--budget", "60s", "--json", "-q", "-o"])
            .arg(dir.path().join("out"))
            .output()
            .await
            .unwrap();
        stop.cancel();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json["verdict"], "inconclusive", "{stdout}");
        let family = &json["families"][0];
        assert_eq!(family["result"], "unjudged", "{stdout}");
        assert!(
            family["why"]
                .as_str()
                .is_some_and(|why| why.contains("the bad tokens were never judged")),
            "{stdout}"
        );
        assert!(family["shed"]["attempts"].as_u64() >= Some(30), "{stdout}");
        assert!(family["shed"]["of"].as_u64() >= Some(38), "{stdout}");
    })
    .await
    .expect("bounded");
}

/// Any hunt, not only the battery's: a round whose bad tokens the server shed judged
/// nothing about them, so `hunt` ends unjudged (inconclusive, exit 4), and `--json` says
/// how many attempts its rounds had shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hunt_whose_bad_tokens_were_shed_is_unjudged() {
    tokio::time::timeout(BOUND, async {
        let (url, stop) = sheds_bad_tokens::spawn(None).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shed-bad.toml");
        let secret = common::TEST_SECRET;
        std::fs::write(
            &file,
            format!(
                r#"name = "shed-bad"
duration = "10s"

[auth]
secret = {{ value = "{secret}" }}

[[group]]
name = "valid"
users = 2
steps = [ {{ expect = "connection_established", within = "2s" }}, {{ close = 1000 }} ]

[[group]]
name = "bad"
users = 26
forge = "catalogue"
steps = [ {{ think = "200ms" }}, {{ close = 1000 }} ]

[hunt]
rounds = 1
"#
            ),
        )
        .unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
            .args(["hunt", file.to_str().unwrap(), "--target", &url])
            .args(["--budget", "30s", "--json", "-q", "-o"])
            .arg(dir.path().join("out"))
            .output()
            .await
            .unwrap();
        stop.cancel();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json["short"], "unjudged", "{stdout}");
        assert_eq!(json["unjudged"]["verdict"], "inconclusive", "{stdout}");
        let hint = json["unjudged"]["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains("the bad tokens were never judged"),
            "{stdout}"
        );
        assert!(json["shed"]["attempts"].as_u64() >= Some(20), "{stdout}");
        assert_eq!(json["shed"]["of"], 28, "{stdout}");
    })
    .await
    .expect("bounded");
}

/// A geth-style server (the engine API's JWT auth): HS256 with the test secret, and no
/// registered claim required. RFC 7519 makes every one optional, so a validly signed token
/// without `sub` or `exp` is taken (one with an `exp` is still held to it); a token it
/// does not take gets 401.
mod takes_claimless_tokens {
    use super::common::{serve_fake, spawn_server, unverified_sub, Fault};
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_util::sync::CancellationToken;

    /// Whether the server takes `token`.
    fn takes(token: &str) -> bool {
        use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let key = DecodingKey::from_secret(super::common::TEST_SECRET.as_bytes());
        decode::<serde_json::Value>(token, &key, &validation).is_ok()
    }

    async fn serve(tcp: tokio::net::TcpStream) {
        let mut sub = String::new();
        let callback = |req: &Request, resp: Response| {
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if takes(token) {
                sub = unverified_sub(token).unwrap_or_default();
                return Ok(resp);
            }
            let mut refusal = ErrorResponse::new(None);
            *refusal.status_mut() = 401u16.try_into().unwrap();
            Err(refusal)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        serve_fake(ws, sub, Fault::None).await;
    }

    pub async fn spawn() -> (String, CancellationToken) {
        spawn_server(serve).await
    }
}

/// A correct server whose policy takes a validly signed, current token without `sub` or
/// `exp` (geth's engine API checks only `iat`) is no finding: the bad-token family ends
/// clean and says on a `policy:` line which entries were lenient acceptances. It reported
/// `found rejection_hygiene` (missing-sub, missing-exp "seen accepted") against such a
/// server. A signature it does not check would still be one: the other entries are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_taking_tokens_without_sub_or_exp_is_clean_with_a_policy_note() {
    tokio::time::timeout(BOUND, async {
        let b = load_battery_str(&sheds_bad_tokens::battery_text(), "hunt.toml")
            .unwrap()
            .unwrap();
        let (url, stop) = takes_claimless_tokens::spawn().await;
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&b, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let report = &outcome.families[0];
        assert_eq!(report.family, Family::BadTokens);
        assert!(matches!(report.end, FamilyEnd::Clean), "{:?}", report.end);
        assert!(report.levels[0].judged > 0, "{:?}", report.levels);
        let policy = report.policy.join("\n");
        assert!(
            policy.contains("the target accepts bad tokens whose refusal is a server's choice")
                && policy.contains("missing-exp 1")
                && policy.contains("missing-sub 1")
                && policy.contains("policy = \"strict\""),
            "{policy}"
        );
        // Only policy entries: every must-reject one was refused.
        assert!(!policy.contains("alg-none"), "{policy}");
        assert!(!policy.contains("wrong-signature"), "{policy}");
    })
    .await
    .expect("bounded");
}

/// A server whose policy is "newest connection wins" (Slack's, Discord's gateway: a
/// token that connects again ends its older session), saying so with close 4409
/// "session replaced"; otherwise correct: greets `welcome`, answers each `req` with its
/// `res`. None of that is a race.
mod takeover {
    use super::common::{accept_bearer, spawn_server, unverified_sub, TEST_SECRET};
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_util::sync::CancellationToken;

    /// Each user's live session: what tells it it was replaced (cancelled once, read
    /// whenever: a takeover that comes while the session is busy is not lost).
    type Sessions = Arc<Mutex<HashMap<String, CancellationToken>>>;

    pub async fn spawn() -> (String, CancellationToken) {
        let sessions: Sessions = Arc::default();
        spawn_server(move |tcp| serve(tcp, sessions.clone())).await
    }

    async fn serve(tcp: tokio::net::TcpStream, sessions: Sessions) {
        let Some((mut ws, token)) = accept_bearer(tcp, |_| true).await else {
            return;
        };
        let user = unverified_sub(&token).unwrap_or_default();
        let replaced = CancellationToken::new();
        {
            // Under the lock: a session ending meanwhile must not take the newer one's entry
            // for its own.
            let mut live = sessions.lock().unwrap();
            if let Some(older) = live.insert(user.clone(), replaced.clone()) {
                older.cancel();
            }
        }
        let hello = json!({"type": "welcome"}).to_string();
        if ws.send(Message::Text(hello.into())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                // Replaced first: a replaced session is served nothing more.
                biased;
                _ = replaced.cancelled() => {
                    let frame = CloseFrame {
                        code: CloseCode::from(4409),
                        reason: "session replaced".into(),
                    };
                    let _ = ws.close(Some(frame)).await;
                    // Until the client answers the Close (it does at once).
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
                frame = ws.next() => {
                    // A Close is answered by reading on (tungstenite replies to it), until
                    // the stream ends: dropped at once, the client would see a reset.
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => break,
                    };
                    if replaced.is_cancelled() {
                        // Replaced while the request came: closed next, not served.
                        continue;
                    }
                    let request: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    let res = json!({"type": "res", "id": request["id"]}).to_string();
                    if ws.send(Message::Text(res.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let mut live = sessions.lock().unwrap();
        // Not replaced, the entry is its own (a newer session would have cancelled it).
        if !replaced.is_cancelled() {
            live.remove(&user);
        }
    }

    /// A battery file for it, narrowed to the `same-token` family.
    pub fn battery_text() -> String {
        format!(
            r#"name = "takeover"
seed = 1
duration = "20s"

[auth]
secret = {{ value = "{TEST_SECRET}" }}

[battery]
request = {{ type = "req", id = "r-{{{{conn}}}}-{{{{run}}}}" }}
ack = "welcome"
reply = "res"
correlate = "id"
within = "2s"
families = ["same-token"]
"#
        )
    }
}

/// "Newest connection wins", undeclared: the same-token family's calibration sees the
/// older session ended with a close that reads as a takeover, notes it as the target's
/// policy and counts such closes as replaced: no race found (a find here used to be
/// confirmed 10/10 against this correct server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_takeover_policy_is_noted_not_found() {
    let check = async {
        let (url, stop) = takeover::spawn().await;
        let battery = load_battery_str(&takeover::battery_text(), "takeover.toml")
            .unwrap()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_against(&battery, Target::Url(url), dir.path(), BUDGET).await;
        stop.cancel();
        let report = &outcome.families[0];
        assert!(
            matches!(report.end, FamilyEnd::Clean),
            "{:?} {:?}",
            report.end,
            report.policy
        );
        assert!(
            report.policy.iter().any(|p| p.contains(
                "the target ends the older session of a token when it connects again (close 4409"
            )),
            "{:?}",
            report.policy
        );
    };
    tokio::time::timeout(BOUND, check).await.expect("bounded");
}
