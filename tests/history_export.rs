//! The export of the published generation (see `common::generations`): a line per
//! professional, as the claims API serves it, and a cursor the feed continues with no gap.

mod common;

use serde_json::{Value, json};

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::generations::{CHANGED, REMOVED, day3_options, write_day3};
use common::server::TestServer;
use common::{annuaire_cli as cli, lenient, published_db, samples};

/// The export: a line per professional (removed ones with their last claims), each
/// document as the claims API serves it, gzip when asked; its cursor continues into the
/// feed with no gap. Through the API and the CLI.
#[tokio::test]
async fn the_export_is_the_published_generation_and_the_feed_continues_it() {
    use std::io::Read;

    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    let (_, admin_key) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    let (_, claims_key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let (_, feed_key) = keys::create(&pool, "downstream", &[Scope::Feed]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    server
        .wait_for_status("day 2 to be served", &format!("/v1/claims/{REMOVED}"), &claims_key, 410)
        .await;

    let plain = server
        .client
        .get(server.url("/v1/export"))
        .bearer_auth(&admin_key)
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let h = plain.headers().clone();
    assert_eq!(h["content-type"], "application/x-ndjson");
    assert!(h.get("content-encoding").is_none());
    assert_eq!(h["x-annuaire-generation"], "2");
    assert_eq!(h["x-annuaire-source"], "RPPS (ANS), extrait du 2026-11-26");
    let cursor = h["x-annuaire-changes-cursor"].to_str().unwrap().to_owned();
    let body = plain.bytes().await.unwrap();
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let (present, removed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE removed_at IS NULL), count(*) FILTER (WHERE removed_at IS NOT NULL) FROM professional",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(lines.len() as i64, present + removed, "a line per professional");
    let line = lines.iter().find(|l| l["national_id"] == CHANGED).unwrap();
    let served: Value = server
        .get(&format!("/v1/claims/{CHANGED}"), &claims_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(line["claims"], served, "the document the claims API serves");
    assert_eq!(line["removed_at"], Value::Null);
    let gone = lines.iter().find(|l| l["national_id"] == REMOVED).unwrap();
    assert_eq!(gone["removed_at"], "2026-11-26T08:00:00Z");
    assert_eq!(gone["claims"]["SubjectNameID"], REMOVED, "with their last claims");

    // gzip when accepted: the same lines.
    let gzipped = server
        .client
        .get(server.url("/v1/export"))
        .bearer_auth(&admin_key)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let packed = gzipped.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, body.to_vec());

    // The export's cursor: nothing after it yet; after day 3, exactly day 3's changes.
    let after: Value = server
        .get(&format!("/v1/changes?since={cursor}"), &feed_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["changes"], json!([]));
    let day3 = tempfile::tempdir().unwrap();
    write_day3(day3.path());
    let options = day3_options();
    import::import(&pool, day3.path().to_str().unwrap(), &options)
        .await
        .expect("day 3");
    let after: Value = server
        .get(&format!("/v1/changes?since={cursor}"), &feed_key)
        .await
        .json()
        .await
        .unwrap();
    let runs: Vec<i64> = after["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["run_id"].as_i64().unwrap())
        .collect();
    let day3_changes: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM professional_record WHERE run_id = 3) + (SELECT count(*) FROM run_removal WHERE run_id = 3)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(runs.len() as i64, day3_changes);
    assert!(runs.iter().all(|r| *r == 3), "{runs:?}");

    // The CLI: the same lines as the API's export of the same generation.
    let api_now = server
        .client
        .get(server.url("/v1/export"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson.gz");
    let out = cli(&db.url, &["export", "--out", file.to_str().unwrap(), "--gzip"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("generation 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut from_cli = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_end(&mut from_cli)
        .unwrap();
    assert_eq!(from_cli, api_now.to_vec());
    server.stop().await;
}
