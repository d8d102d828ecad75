//! Two admin and feed answers against real Postgres (issue 24): a feed cursor that no
//! answer gave, undecodable or past the published generation, is a 400 naming `since`
//! (one past the generation used to be accepted and parked its reader); and a run's diff
//! without `kind` gives all three kinds, as `annuaire imports diff` does.

mod common;

use serde_json::Value;

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::server::TestServer;
use common::{annuaire_cli as cli, published_db, samples};

#[tokio::test]
async fn a_cursor_no_answer_gave_is_a_400_naming_since() {
    let db = published_db("ps-libreacces").await;
    let (_, feed_key) = keys::create(&db.pool, "downstream", &[Scope::Feed]).await.unwrap();
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;

    let first: Value = server.get("/v1/changes?limit=1", &feed_key).await.json().await.unwrap();
    let next = first["next"].as_str().unwrap();
    assert_eq!(
        server
            .get(&format!("/v1/changes?since={next}"), &feed_key)
            .await
            .status(),
        200,
        "a cursor of an answer"
    );
    // Run 1 is the only published generation.
    let cases = [
        ("the next run", hex::encode("2.810000000000")),
        ("far ahead", hex::encode("9223372036854775807.8")),
        ("not hex", "zz".to_owned()),
        ("not a cursor", hex::encode("x.810000000000")),
    ];
    for (what, cursor) in cases {
        let response = server.get(&format!("/v1/changes?since={cursor}"), &feed_key).await;
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{what}");
        let problem: Value = response.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with("since is "), "{what}: {problem}");
    }
    let out = cli(&db.url, &["changes", "--since", &hex::encode("2.810000000000")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("since is ahead of the published generation (run 1)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_diff_without_kind_gives_every_kind_as_the_cli_does() {
    let db = published_db("ps-libreacces").await;
    let day2 = samples().join("ps-libreacces-day2");
    let held = import::import(&db.pool, day2.to_str().unwrap(), &import::ImportOptions::default())
        .await
        .expect("day 2 runs");
    assert_eq!(held.status, "held", "the default gate holds day 2");
    let (_, admin_key) = keys::create(&db.pool, "admin", &[Scope::Admin]).await.unwrap();
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    let run = held.id.0;

    let response = server
        .get(&format!("/v1/imports/{run}/diff?per_page=1"), &admin_key)
        .await;
    assert_eq!(response.status(), 200);
    let pages: Value = response.json().await.unwrap();
    let kinds: Vec<&str> = pages
        .as_array()
        .unwrap_or_else(|| panic!("an array of pages: {pages}"))
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["removed", "changed", "added"]);
    for (page, total) in pages
        .as_array()
        .unwrap()
        .iter()
        .zip([held.removed, held.changed, held.added])
    {
        let total = total.unwrap();
        assert_eq!(page["total"], total, "{page}");
        assert_eq!(page["per_page"], 1);
        let items = page["items"].as_array().unwrap().len() as i64;
        assert_eq!(items, total.min(1), "a page of each kind, bounded by per_page");
    }
    assert!(
        held.changed.unwrap() > 0 && held.removed.unwrap() > 0,
        "day 2 changes and removes"
    );

    let out = cli(
        &db.url,
        &["imports", "diff", &run.to_string(), "--per-page", "1", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_pages: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pages, cli_pages, "the API and the CLI give the same pages");

    let removed: Value = server
        .get(&format!("/v1/imports/{run}/diff?kind=removed"), &admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed["kind"], "removed", "one kind asked: one page, as before");
    server.stop().await;
}
