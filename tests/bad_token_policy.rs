//! The bad-token policy (issue 9, "Policy taken for a bug"): the shipped scenarios against
//! the reference server in two correct configurations, the default strict one and one
//! with a lenient policy (no issuer configured, a missing or empty `sub`, no `exp` or a
//! numeric-string one, last of duplicate keys, tokens up to 32 KiB). Neither gives a violation; the lenient server's
//! acceptances of policy entries are counted as lenient acceptances, which a strict
//! policy in the scenario turns back into violations and a threshold can make fatal.
//!
//! The runs here take turns (one server and one swarm at a time): the machine may have
//! 2 cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use stampede::auth;
use stampede::model::{Forge, OracleKind, Plan, Policy, Scenario, StatedClaims};
use stampede::reference;
use stampede::run::{execute, Bound, RunOptions, RunOutcome};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

/// Every run or handshake here is bounded by this, whatever happens.
const BOUND: Duration = Duration::from_secs(60);
/// What the lenient reference server accepts from `bad-tokens.toml` (no `[auth] aud`/`iss`),
/// once per placement: the policy entries except `wrong-aud` (it refuses an audience it
/// was never given, as jsonwebtoken does).
const LENIENT_ENTRIES: [&str; 7] = [
    "duplicate-sub-keys",
    "empty-sub",
    "exp-string",
    "missing-exp",
    "missing-sub",
    "oversized",
    "wrong-iss",
];
/// Placements each catalogue group of `bad-tokens.toml` presents through.
const PLACEMENTS: u64 = 3;

/// One run at a time: the machine may have 2 cores.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn shipped_text(name: &str) -> String {
    std::fs::read_to_string(scenarios_dir().join(format!("{name}.toml"))).unwrap()
}

fn load(name: &str, text: &str) -> Scenario {
    stampede::scenario::load_str(text, &format!("{name}.toml"))
        .unwrap_or_else(|e| panic!("{name} does not load:\n{e}"))
}

/// The bad-tokens scenario as shipped, with `extra` appended (a `[thresholds]` table) and
/// its `reject` line given `policy`.
fn bad_tokens(policy: Option<&str>, extra: &str) -> Scenario {
    let shipped = shipped_text("bad-tokens");
    let line = "reject = { http = [401, 403, 409], close = [1008] }";
    assert!(shipped.contains(line), "the shipped [oracles] line moved");
    let text = match policy {
        Some(p) => shipped.replace(
            line,
            &format!("reject = {{ http = [401, 403, 409], close = [1008], policy = \"{p}\" }}"),
        ),
        None => shipped,
    };
    load("bad-tokens", &format!("{text}\n{extra}\n"))
}

/// The reference server for `plan`, strict or lenient, started in process.
async fn bind(plan: &Plan, lenient: bool, cancel: &CancellationToken) -> Bound {
    let keys = auth::resolve_keys(&plan.auth).unwrap();
    let mut config = stampede::run::reference_config(plan, &keys).unwrap();
    config.lenient = lenient;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = reference::spawn(config, loopback, cancel.child_token())
        .await
        .unwrap();
    Bound::with_server(server, keys)
}

/// Runs `s` once against the reference server, strict or lenient, writing the result files
/// under `out` when given; bounded in time.
async fn run(s: &Scenario, lenient: bool, out: Option<&Path>) -> RunOutcome {
    let _turn = SERIAL.lock().await;
    let plan = stampede::plan::build(s, s.seed);
    let cancel = CancellationToken::new();
    let bound = bind(&plan, lenient, &cancel).await;
    let opts = RunOptions {
        out: out.map(Path::to_path_buf),
        ..RunOptions::default()
    };
    let outcome = tokio::time::timeout(
        BOUND,
        execute(
            Arc::new(plan),
            &bound,
            Default::default(),
            &opts,
            cancel.child_token(),
        ),
    )
    .await;
    bound.close().await;
    match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => panic!("{} (lenient {lenient}): run failed: {e}", s.name),
        Err(_) => panic!("{} (lenient {lenient}): not done within {BOUND:?}", s.name),
    }
}

fn text(outcome: &RunOutcome) -> String {
    let mut out = Vec::new();
    stampede::report::render(&outcome.results.summary, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// No violation of any oracle, a clean verdict and exit code 0.
fn assert_clean(what: &str, outcome: &RunOutcome) {
    let s = &outcome.results.summary;
    assert_eq!(
        s.violations.total,
        0,
        "{what}: {:#?}",
        outcome
            .results
            .violations
            .iter()
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(s.verdict.name(), "clean", "{what}");
    assert_eq!(stampede::cli::error::of_run(s), 0, "{what}");
    assert!(text(outcome).contains("violations   none"), "{what}");
}

fn lenient_counts(outcome: &RunOutcome) -> BTreeMap<String, u64> {
    outcome.results.summary.lenient.by_entry.clone()
}

fn thresholds_met(s: &Scenario, outcome: &RunOutcome) -> Vec<(String, bool)> {
    stampede::results::evaluate(&outcome.results.summary, &s.thresholds)
        .into_iter()
        .map(|r| (r.metric, r.passed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_on_a_lenient_server_are_lenient_acceptances_not_violations() {
    let s = bad_tokens(
        None,
        "[thresholds]\nlenient_acceptances = \"== 0\"\nviolations = \"== 0\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&s, true, Some(dir.path())).await;
    assert_clean("bad-tokens, lenient server", &outcome);
    let summary = &outcome.results.summary;

    // Seven policy entries through three placements; 12 valid tokens besides.
    let want: BTreeMap<String, u64> = LENIENT_ENTRIES
        .iter()
        .map(|e| (e.to_string(), PLACEMENTS))
        .collect();
    assert_eq!(lenient_counts(&outcome), want);
    assert_eq!(summary.lenient.total, 21);
    assert_eq!(summary.counters.accepted, 12 + 21);
    // The clean line says what the bad tokens met, the point of the scenario.
    let hint = summary.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("; 93 of 114 bad-token attempts refused cleanly (21 accepted: the server's lenient policy, see the lenient line)"),
        "{hint}"
    );
    for l in &summary.lenient.first {
        assert!(l.group.starts_with("catalogue-"), "{l:?}");
        assert!(LENIENT_ENTRIES.contains(&l.entry.name()), "{l:?}");
        assert!(!l.jti.is_empty());
    }

    // The threshold on lenient acceptances is what makes them fatal.
    assert_eq!(
        thresholds_met(&s, &outcome),
        [
            ("lenient_acceptances".to_string(), false),
            ("violations".to_string(), true)
        ]
    );

    // Every output shows them as a note.
    let shown = text(&outcome);
    assert!(
        shown.contains("lenient      21 bad tokens accepted by server policy, not violations (duplicate-sub-keys 3, empty-sub 3, exp-string 3, missing-exp 3, missing-sub 3, oversized 3, wrong-iss 3)"),
        "{shown}"
    );
    let written = outcome.dir.as_ref().expect("result files were written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(written.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["lenient"]["total"], 21, "{:#}", json["lenient"]);
    assert_eq!(json["lenient"]["by_entry"]["wrong-iss"], 3);
    assert_eq!(json["lenient"]["by_entry"]["missing-exp"], 3);
    assert_eq!(json["violations"]["total"], 0);
    let data = stampede::results::read_run(written).unwrap();
    assert_eq!(data.summary.lenient, summary.lenient);
    let html = stampede::report::render_html(&data, None).unwrap();
    assert!(html.contains("Lenient acceptances."), "no note in the HTML");
    assert!(html.contains("21 bad tokens accepted by server policy"));
    let junit = stampede::report::junit(summary);
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(junit.contains("name=\"lenient_acceptances\" value=\"21\""));
    assert!(junit.contains("<system-out>21 bad tokens accepted"));
}

/// With the identity declared, the lenient server greets a token forged to name another
/// subject (`missing-sub`, `empty-sub`, `duplicate-sub-keys`) as that subject: not the
/// plan's user, and no identity violation (there were 9, one per such connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_forged_to_another_subject_is_greeted_as_it_without_an_identity_finding() {
    let shipped = shipped_text("bad-tokens");
    let oracles = "[oracles]\nreject = { http = [401, 403, 409], close = [1008] }";
    assert!(
        shipped.contains(oracles),
        "the shipped [oracles] table moved"
    );
    let text = shipped.replace(
        oracles,
        &format!("{oracles}\nidentity = {{ field = \"user_id\" }}"),
    );
    let s = load("bad-tokens-identity", &text);
    let outcome = run(&s, true, None).await;
    let summary = &outcome.results.summary;
    assert_eq!(summary.lenient.total, 21, "{:?}", summary.lenient);
    assert_eq!(
        summary.violations.of(OracleKind::Identity),
        0,
        "{:#?}",
        outcome.results.violations
    );
    assert_clean("bad-tokens with identity, lenient server", &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_policy_makes_the_lenient_servers_acceptances_violations() {
    let s = bad_tokens(Some("strict"), "");
    let outcome = run(&s, true, None).await;
    let summary = &outcome.results.summary;
    assert_eq!(summary.lenient.total, 0, "{:?}", summary.lenient);
    let found: Vec<_> = outcome
        .results
        .violations
        .iter()
        .filter(|v| v.oracle == OracleKind::RejectionHygiene)
        .collect();
    assert_eq!(found.len(), 21, "{found:#?}");
    assert_eq!(summary.violations.total, 21, "{:?}", summary.violations);
    let mut by_entry: BTreeMap<&str, u64> = BTreeMap::new();
    for v in &found {
        assert!(
            v.seen.starts_with("accepted, against the strict policy"),
            "{v:?}"
        );
        let entry = v.expected.split(['(', ')']).nth(1).unwrap();
        *by_entry.entry(entry).or_default() += 1;
    }
    let want: BTreeMap<&str, u64> = LENIENT_ENTRIES.iter().map(|e| (*e, PLACEMENTS)).collect();
    assert_eq!(by_entry, want);
    assert_eq!(stampede::cli::error::of_run(summary), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_on_the_strict_server_have_no_lenient_acceptances() {
    for policy in [None, Some("strict")] {
        let s = bad_tokens(policy, "[thresholds]\nlenient_acceptances = \"== 0\"");
        let outcome = run(&s, false, None).await;
        assert_clean(&format!("bad-tokens ({policy:?}), strict server"), &outcome);
        assert_eq!(outcome.results.summary.lenient.total, 0);
        assert_eq!(outcome.results.summary.counters.accepted, 12);
        let hint = outcome.results.summary.hint.clone().unwrap_or_default();
        assert!(
            hint.starts_with("every expectation met (24 on 12 connections) and no oracle broke; every one of 114 bad-token attempts refused cleanly"),
            "{hint}"
        );
        assert_eq!(
            thresholds_met(&s, &outcome),
            [("lenient_acceptances".to_string(), true)]
        );
        assert!(!text(&outcome).contains("lenient "));
    }
}

/// With `[auth] iss` stated, `wrong-iss` is must-reject: the lenient server, configured
/// with that issuer, refuses it, and the run stays clean with one entry fewer counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stated_issuer_makes_wrong_iss_must_reject() {
    let text = shipped_text("bad-tokens").replace(
        "\n[oracles]",
        "\n[auth]\niss = \"https://issuer.example\"\n\n[oracles]",
    );
    let s = load("bad-tokens", &text);
    assert_eq!(s.auth.iss.as_deref(), Some("https://issuer.example"));
    let outcome = run(&s, true, None).await;
    assert_clean("bad-tokens with [auth] iss, lenient server", &outcome);
    let counts = lenient_counts(&outcome);
    assert!(!counts.contains_key("wrong-iss"), "{counts:?}");
    assert_eq!(outcome.results.summary.lenient.total, 18, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_oracle_scenarios_are_clean_on_the_lenient_server() {
    for name in ["token-reuse-burst", "reconnect-storm"] {
        let s = load(name, &shipped_text(name));
        let outcome = run(&s, true, None).await;
        assert_clean(&format!("{name}, lenient server"), &outcome);
        assert_eq!(outcome.results.summary.lenient.total, 0, "{name}");
    }
}

/// Every shipped scenario, top level and `races/`: every kind of token it presents (by
/// forge and placement) gets the same answer from the strict and the lenient server,
/// except the entries whose refusal is a policy. So the lenient server runs each shipped
/// scenario exactly as the strict one does, which the other tests show clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lenient_server_differs_from_the_strict_one_only_on_policy_entries() {
    let _turn = SERIAL.lock().await;
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [scenarios_dir(), scenarios_dir().join("races")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // A battery (`hunt.toml`) is no scenario: its bad-token family presents the
            // catalogue as `bad-tokens.toml` does, which is counted below once.
            let battery = || {
                stampede::scenario::load_battery_file(&path)
                    .unwrap()
                    .is_some()
            };
            if path.extension().is_some_and(|e| e == "toml") && !battery() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 12, "{files:?}");
    let mut differed: BTreeMap<String, u32> = BTreeMap::new();
    for path in &files {
        let s = stampede::scenario::load_file(path).unwrap();
        let plan = stampede::plan::build(&s, s.seed);
        let cancel = CancellationToken::new();
        let strict = bind(&plan, false, &cancel).await;
        let lenient = bind(&plan, true, &cancel).await;
        let tokens = auth::mint_all(&plan.tokens, &plan.auth, &strict.keys).unwrap();
        let stated = StatedClaims {
            aud: plan.auth.aud.is_some(),
            iss: plan.auth.iss.is_some(),
        };
        // One connection per kind of token and placement, each token presented once per
        // server (a second use could meet its own session, not yet released: a 409).
        let mut kinds: BTreeMap<String, &stampede::model::ConnPlan> = BTreeMap::new();
        let mut used = std::collections::BTreeSet::new();
        for conn in &plan.conns {
            let forge = &plan.tokens[conn.token as usize].forge;
            let key = format!("{forge:?} {:?}", plan.placement_of(conn));
            if !kinds.contains_key(&key) && used.insert(conn.token) {
                kinds.insert(key, conn);
            }
        }
        for (kind, conn) in kinds {
            let token = &tokens[conn.token as usize];
            let placement = plan.placement_of(conn);
            let a = upgrade(&strict.url, placement, token).await;
            let b = upgrade(&lenient.url, placement, token).await;
            if a == b {
                continue;
            }
            let policy = match &plan.tokens[conn.token as usize].forge {
                Some(Forge::Bad { name }) => name.policy_for(stated),
                _ => Policy::MustReject,
            };
            assert_eq!(
                (a, b, policy),
                (Err(401), Ok(()), Policy::ServerPolicy),
                "{}: {kind}",
                path.display()
            );
            if let Some(Forge::Bad { name }) = &plan.tokens[conn.token as usize].forge {
                *differed.entry(name.to_string()).or_default() += 1;
            }
        }
        strict.close().await;
        lenient.close().await;
    }
    // Only bad-tokens.toml presents policy entries, through its three placements.
    let want: BTreeMap<String, u32> = LENIENT_ENTRIES
        .iter()
        .map(|e| (e.to_string(), PLACEMENTS as u32))
        .collect();
    assert_eq!(differed, want);
}

/// What a server answered one upgrade: `Ok(())` accepted (then closed), `Err(status)`.
async fn upgrade(
    url: &str,
    placement: &stampede::model::Placement,
    token: &auth::Token,
) -> Result<(), u16> {
    let request = auth::attach(url, placement, token).unwrap();
    let answer = tokio::time::timeout(BOUND, async {
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut ws, _)) => {
                let first = ws.next().await;
                assert!(
                    matches!(first, Some(Ok(Message::Text(_)))),
                    "{token:?}: {first:?}"
                );
                ws.close(None).await.unwrap();
                while let Some(Ok(_)) = ws.next().await {}
                Ok(())
            }
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("{token:?} via {placement:?}: not an HTTP refusal: {other}"),
        }
    })
    .await;
    answer.expect("the upgrade was answered in time")
}
