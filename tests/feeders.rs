//! `feeder = { file = ... }`: per-user rows from CSV or JSON lines reach the server through
//! `{{feed.COLUMN}}` in sends and upgrade headers, user `u` taking row `u mod rows`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::{run, spawn_server};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// Records each connection's `X-Name` header and the text frames it sent.
async fn spawn_recorder() -> (
    String,
    tokio_util::sync::CancellationToken,
    Arc<Mutex<Vec<(String, Vec<String>)>>>,
) {
    let all = Arc::new(Mutex::new(Vec::new()));
    let log = all.clone();
    let (url, stop) = spawn_server(move |tcp| {
        let log = log.clone();
        async move {
            let mut header = String::new();
            let callback = |req: &Request, resp: Response| {
                header = req
                    .headers()
                    .get("x-name")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Ok(resp)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                return;
            };
            let mut texts = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Text(t) => texts.push(t.to_string()),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            log.lock().unwrap().push((header, texts));
        }
    })
    .await;
    (url, stop, all)
}

async fn run_feeder(data_name: &str, data: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(data_name), data).unwrap();
    let text = format!(
        r#"
name = "feeders"
seed = 2
duration = "20s"
[oracles]
liveness = false
[[group]]
name = "fed"
users = 3
feeder = {{ file = "{data_name}" }}
headers = {{ "X-Name" = "{{{{feed.name}}}}" }}
steps = [{{ send = {{ type = "hi", name = "{{{{feed.name}}}}", city = "{{{{feed.city}}}}-{{{{user}}}}" }} }}, {{ close = 1000 }}]
"#
    );
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let (url, stop, seen) = spawn_recorder().await;
    let out = dir.path().join("out");
    let outcome = run(&s, Some(url), Some(&out)).await;
    stop.cancel();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    // Two rows, three users: user 2 takes row 0 again.
    let expected = [
        ("ada", r#"{"type":"hi","name":"ada","city":"Paris-0"}"#),
        ("ada", r#"{"type":"hi","name":"ada","city":"Paris-2"}"#),
        ("bob", r#"{"type":"hi","name":"bob","city":"Oslo-1"}"#),
    ];
    assert_eq!(seen.len(), 3, "{seen:?}");
    for ((header, texts), (name, text)) in seen.iter().zip(expected) {
        assert_eq!(header, name);
        assert_eq!(texts, &[text.to_string()]);
    }
    // The plan names the file, never its rows.
    let plan = outcome.plan.to_json().unwrap();
    assert!(
        plan.contains(data_name) && !plan.contains("Paris"),
        "{plan}"
    );
}

#[tokio::test]
async fn csv_rows_reach_the_server_per_user() {
    run_feeder("users.csv", "name,city\nada,Paris\nbob,Oslo\n").await;
}

#[tokio::test]
async fn json_lines_rows_reach_the_server_per_user() {
    run_feeder(
        "users.jsonl",
        "{\"name\": \"ada\", \"city\": \"Paris\"}\n{\"city\": \"Oslo\", \"name\": \"bob\"}\n",
    )
    .await;
}

#[tokio::test]
async fn a_replayed_plan_reads_its_feeder_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("u.csv"), "name,city\nada,Paris\n").unwrap();
    let text = r#"
name = "feeders"
duration = "20s"
[oracles]
liveness = false
[[group]]
name = "fed"
users = 1
feeder = { file = "u.csv" }
headers = { "X-Name" = "{{feed.name}}" }
steps = [{ send = { name = "{{feed.name}}" } }, { close = 1000 }]
"#;
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = stampede::scenario::load_file(&path).unwrap();
    let plan = stampede::plan::build(&s, 1);
    let back: stampede::model::Plan = serde_json::from_str(&plan.to_json().unwrap()).unwrap();
    assert!(
        back.group_feeds[0].as_ref().unwrap().rows.is_empty(),
        "rows are not stored"
    );
    let (url, stop, seen) = spawn_recorder().await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let target = stampede::run::Target::Url(url);
    let bound = stampede::run::bind(&target, &back, &cancel).await.unwrap();
    let live = std::sync::Arc::new(Default::default());
    let opts = stampede::run::RunOptions::default();
    let run = stampede::run::execute(std::sync::Arc::new(back), &bound, live, &opts, cancel);
    tokio::time::timeout(common::TEST_BOUND, run)
        .await
        .unwrap()
        .unwrap();
    stop.cancel();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [("ada".to_string(), vec![r#"{"name":"ada"}"#.to_string()])]
    );
}
