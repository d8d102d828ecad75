//! Log lines as a collector reads them, from a real `annuaire serve` whose stderr is a pipe:
//! no colour codes in text; with `--log-format json` every line is one JSON object, and a
//! request's lines carry its id (the client's `X-Request-Id`, or one made when the client's
//! is unacceptable), returned in the answer; keys never appear.

mod common;

use annuaire::keys::{self, Scope};
use serde_json::Value;

use common::published_db;
use common::serving::Serving;

#[tokio::test]
async fn logs_are_plain_on_a_pipe_and_json_lines_carry_the_request_id() {
    annuaire::install_crypto_provider();
    let db = published_db("ps-libreacces").await;
    let (_, key) = keys::create(&db.pool, "admin", &[Scope::Admin]).await.unwrap();
    let client = reqwest::Client::new();

    let text = Serving::start(&db.url, &["--log-format", "text"], &[]).await;
    client
        .get(format!("{}/v1/imports", text.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let logged = text.stop();
    assert!(logged.lines().count() >= 2, "{logged}");
    assert!(!logged.contains('\x1b'), "colour codes on a pipe:\n{logged}");

    let json = Serving::start(&db.url, &["--log-format", "json"], &[]).await;
    let asked = client
        .get(format!("{}/v1/imports", json.base))
        .bearer_auth(&key)
        .header("x-request-id", "audit-4711.a")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    assert_eq!(asked.headers()["x-request-id"], "audit-4711.a");
    let replaced = client
        .get(format!("{}/v1/imports", json.base))
        .bearer_auth(&key)
        .header("x-request-id", "not acceptable!")
        .send()
        .await
        .unwrap();
    let made = replaced.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(made, "not acceptable!");
    assert!(made.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{made}");
    let logged = json.stop();

    let lines: Vec<Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string())
    );
    let request_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == "audit-4711.a"))
        })
        .collect();
    let end = request_lines
        .iter()
        .find(|l| l["message"] == "request")
        .unwrap_or_else(|| panic!("no request line for audit-4711.a:\n{logged}"));
    assert_eq!(end["level"], "INFO");
    assert_eq!(end["status"], 200);
    assert_eq!(end["method"], "GET");
    assert!(end["latency_ms"].is_number());
    assert_eq!(end["spans"][0]["route"], "/v1/imports");
    assert!(
        lines.iter().any(|l| l["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["request_id"] == made.as_str()))),
        "the made id is logged too"
    );
    assert!(!logged.contains(&key), "a key in the log");
}
