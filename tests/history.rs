//! The directory's past, against real Postgres and a real server with three published
//! generations: claims at an instant (`?at=`, `claims --at`), byte for byte what the server
//! served then; and each professional's history with its field diffs (API and CLI).
//!
//! Generation 1 is the sample; 2 (the sample's day 2) removes 810013908172 and changes the
//! telephone of 810015620395; 3 (written here) brings 810013908172 back, changes that
//! telephone again, and changes only a diploma of 810003456125.

mod common;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::server::TestServer;
use common::{annuaire_cli as cli, lenient, published_db, samples};

const REMOVED: &str = "810013908172";
const CHANGED: &str = "810015620395";
const DIPLOMA_ONLY: &str = "810003456125";

/// Day 3: day 2's files under a new timestamp, with REMOVED's lines of day 1 back, a new
/// telephone for CHANGED, and one diploma label of DIPLOMA_ONLY reworded.
fn write_day3(dir: &Path) {
    let (day1, day2) = (samples().join("ps-libreacces"), samples().join("ps-libreacces-day2"));
    for entry in std::fs::read_dir(&day2).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let mut text = std::fs::read_to_string(day2.join(&name)).unwrap();
        let day1_text = std::fs::read_to_string(day1.join(name.replace("202611260900", "202611250900"))).unwrap();
        for line in day1_text.lines().filter(|l| l.contains(REMOVED)) {
            text.push_str(line);
            text.push('\n');
        }
        let text = text.replace("0148589999", "0148581111").replace(
            "DES Cardiologie et maladies vasculaires",
            "DES de cardiologie et maladies vasculaires",
        );
        std::fs::write(dir.join(name.replace("202611260900", "202611270900")), text).unwrap();
    }
}

/// Day 3 changes 3 professionals of 16: past even the lenient gate's 10 %.
fn day3_options() -> import::ImportOptions {
    import::ImportOptions {
        gate: import::GateThresholds {
            max_removed_pct: 50.0,
            max_changed_pct: 50.0,
        },
        ..lenient()
    }
}

async fn published_at(pool: &PgPool, run: i64) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT published_at FROM import_run WHERE id = $1 AND status = 'published'")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What the server serves now for each of our professionals: (id, status, body).
async fn served(server: &TestServer, key: &str) -> Vec<(String, u16, Vec<u8>)> {
    let mut answers = Vec::new();
    for id in [REMOVED, CHANGED, DIPLOMA_ONLY] {
        let response = server.get(&format!("/v1/claims/{id}"), key).await;
        let status = response.status().as_u16();
        answers.push((id.to_owned(), status, response.bytes().await.unwrap().to_vec()));
    }
    answers
}

fn at(instant: DateTime<Utc>) -> String {
    // `+00:00` as `%2B00:00`; the server also takes the `Z` form.
    instant.to_rfc3339().replace('+', "%2B")
}

#[tokio::test]
async fn claims_at_an_instant_and_history_across_three_generations() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, claims_key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;

    let generation1 = served(&server, &claims_key).await;
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_status("day 2 to be served", &format!("/v1/claims/{REMOVED}"), &claims_key, 410)
        .await;
    let generation2 = served(&server, &claims_key).await;
    let day3 = tempfile::tempdir().unwrap();
    write_day3(day3.path());
    let day3_options = day3_options();
    let run3 = import::import(&pool, day3.path().to_str().unwrap(), &day3_options)
        .await
        .expect("day 3");
    assert_eq!(run3.status, "published", "{:?}", run3.message);
    server
        .wait_for_body(
            "day 3 to be served",
            &format!("/v1/claims/{CHANGED}"),
            &claims_key,
            "0148581111",
        )
        .await;
    let generation3 = served(&server, &claims_key).await;
    let (p1, p2, p3) = (
        published_at(&pool, 1).await,
        published_at(&pool, 2).await,
        published_at(&pool, 3).await,
    );
    let key = claims_key.clone();

    // Before the first publication: nobody. At each publication and between two: exactly
    // what the server served then, status and bytes.
    let before = server
        .get(
            &format!("/v1/claims/{CHANGED}?at={}", at(p1 - chrono::Duration::seconds(1))),
            &key,
        )
        .await;
    assert_eq!(before.status(), 404);
    assert_eq!(before.headers()["content-type"], "application/problem+json");
    let between = |a: DateTime<Utc>, b: DateTime<Utc>| a + (b - a) / 2;
    for (instant, then) in [
        (p1, &generation1),
        (between(p1, p2), &generation1),
        (p2, &generation2),
        (between(p2, p3), &generation2),
        (p3, &generation3),
        (p3 + chrono::Duration::days(30), &generation3),
    ] {
        for (id, status, body) in then {
            let response = server.get(&format!("/v1/claims/{id}?at={}", at(instant)), &key).await;
            if response.status().as_u16() != *status {
                panic!(
                    "{id} at {instant}: {} {}",
                    response.status(),
                    response.text().await.unwrap()
                );
            }
            if *status == 200 {
                assert_eq!(response.headers()["content-type"], "application/json");
                assert_eq!(
                    &response.bytes().await.unwrap().to_vec(),
                    body,
                    "{id} at {instant}: the bytes served then"
                );
            } else {
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["removed_at"], "2026-11-26T08:00:00+00:00", "{problem}");
                assert_eq!(problem["removal_published_at"], json!(p2.to_rfc3339()), "{problem}");
            }
        }
    }
    assert_eq!(generation2[0].1, 410, "the removal was served by generation 2");
    assert_eq!(generation3[0].1, 200, "and the return by generation 3");
    let malformed = server.get(&format!("/v1/claims/{CHANGED}?at=yesterday"), &key).await;
    assert_eq!(malformed.status(), 400);
    let problem: Value = malformed.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("RFC 3339"), "{problem}");

    // History: API (search scope) and CLI.
    let history: Value = server
        .get(&format!("/v1/professionals/{CHANGED}/history"), &search_key)
        .await
        .json()
        .await
        .unwrap();
    let versions = history["versions"].as_array().unwrap();
    let summary: Vec<(i64, &str, bool)> = versions
        .iter()
        .map(|v| {
            (
                v["run_id"].as_i64().unwrap(),
                v["change"].as_str().unwrap(),
                v["claims_changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(1, "added", true), (2, "changed", true), (3, "changed", true)]
    );
    let telephone = |v: &Value| -> Vec<(String, Value, Value)> {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["path"].as_str().unwrap().to_owned(),
                    c["old"].clone(),
                    c["new"].clone(),
                )
            })
            .collect()
    };
    let old_phone = serde_json::from_slice::<Value>(&generation1[1].2).unwrap()["SubjectRefPro"]["exercices"][0]["activities"][0]["telephone"].clone();
    assert_eq!(
        telephone(&versions[1]),
        vec![(
            "/SubjectRefPro/exercices/0/activities/0/telephone".to_owned(),
            old_phone,
            json!("0148589999")
        )]
    );
    assert_eq!(telephone(&versions[2])[0].2, json!("0148581111"));
    let published = versions[1]["published_at"].as_str().unwrap().parse::<DateTime<Utc>>();
    assert_eq!(published.unwrap(), p2);
    assert_eq!(versions[1]["extract_ts"], "2026-11-26T08:00:00Z");

    let removed = cli(&db.url, &["history", REMOVED, "--json"]);
    assert_eq!(
        removed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let removed: Value = serde_json::from_slice(&removed.stdout).unwrap();
    let changes: Vec<&str> = removed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["added", "removed", "added"]);

    // A diploma alone: the record changed, the claims did not.
    let diploma = cli(&db.url, &["history", DIPLOMA_ONLY]);
    let text = String::from_utf8_lossy(&diploma.stdout);
    assert_eq!(diploma.status.code(), Some(0));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("added") && lines[1].contains("record only: claims unchanged"),
        "{text}"
    );
    assert_eq!(generation2[2].2, generation3[2].2, "the claims served did not change");

    // `claims --at`: the bytes, and the exit statuses.
    let out = cli(&db.url, &["claims", CHANGED, "--at", &between(p1, p2).to_rfc3339()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, [generation1[1].2.as_slice(), b"\n"].concat());
    let out = cli(&db.url, &["claims", REMOVED, "--at", &between(p2, p3).to_rfc3339()]);
    assert_eq!(out.status.code(), Some(5), "removed by then");
    let out = cli(&db.url, &["claims", CHANGED, "--at", "2000-01-01"]);
    assert_eq!(out.status.code(), Some(4), "not published then");
    assert_eq!(cli(&db.url, &["history", "810000000000"]).status.code(), Some(4));
    server.stop().await;
}

/// A held run's diff, before approval: who it would remove and change, with the fields,
/// counted as the run record counts them; through the API and the CLI.
#[tokio::test]
async fn a_held_runs_diff_names_who_it_removes_and_changes() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let day2 = samples().join("ps-libreacces-day2");
    let held = import::import(&pool, day2.to_str().unwrap(), &import::ImportOptions::default())
        .await
        .expect("day 2 runs");
    assert_eq!(held.status, "held", "the default gate holds day 2");
    let (_, admin_key) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    let (_, search_key) = keys::create(&pool, "search", &[Scope::Search]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let run = held.id.0;

    let get = |query: String| {
        let (server, key) = (&server, admin_key.clone());
        async move {
            let response = server.get(&format!("/v1/imports/{run}/diff{query}"), &key).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, removed) = get("?kind=removed".to_owned()).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["status"], "held");
    assert_eq!(removed["kind"], "removed");
    assert_eq!(
        removed["counts"],
        json!({"added": held.added, "changed": held.changed, "removed": held.removed}),
        "the run record's counts"
    );
    let item = &removed["items"][0];
    assert_eq!(
        (
            item["national_id"].as_str(),
            item["family_name"].as_str(),
            item["given_name"].as_str()
        ),
        (Some(REMOVED), Some("MARCHAND"), Some("Olivier"))
    );
    assert_eq!(removed["total"], json!(held.removed));

    let (_, changed) = get("?kind=changed&per_page=1".to_owned()).await;
    assert_eq!(changed["total"], json!(held.changed));
    assert_eq!(changed["items"].as_array().unwrap().len(), 1, "one per page");
    let all_changed: Vec<Value> = {
        let mut all = Vec::new();
        for page in 1..=held.changed.unwrap() {
            let (_, p) = get(format!("?kind=changed&per_page=1&page={page}")).await;
            all.extend(p["items"].as_array().unwrap().iter().cloned());
        }
        all
    };
    let phone = all_changed
        .iter()
        .find(|i| i["national_id"] == CHANGED)
        .expect("the changed professional is listed");
    assert_eq!(phone["claims_changed"], true);
    assert_eq!(
        phone["changes"][0]["path"],
        "/SubjectRefPro/exercices/0/activities/0/telephone"
    );
    assert_eq!(phone["changes"][0]["new"], "0148589999");
    let (_, past_end) = get(format!("?kind=changed&page={}", held.changed.unwrap() + 1)).await;
    assert_eq!(past_end["items"], json!([]));

    for (query, status) in [("?kind=moved", 400), ("?per_page=501", 400), ("?page=0", 400)] {
        assert_eq!(get(query.to_owned()).await.0, status, "{query}");
    }
    let nowhere = server.get("/v1/imports/999/diff", &admin_key).await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(
        server
            .get(&format!("/v1/imports/{run}/diff"), &search_key)
            .await
            .status(),
        403,
        "an admin route"
    );

    let out = cli(&db.url, &["imports", "diff", &run.to_string(), "--kind", "removed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("{REMOVED}  MARCHAND Olivier")), "{text}");
    let out = cli(&db.url, &["imports", "diff", &run.to_string(), "--json"]);
    let pages: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = pages
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["removed", "changed", "added"]);
    server.stop().await;
}

/// The feed, paged two at a time from the first generation while the third is imported,
/// gives every change of the three runs' diffs once, in order, with no gap.
#[tokio::test]
async fn the_feed_pages_every_change_once_while_an_import_runs() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    let (_, feed_key) = keys::create(&pool, "downstream", &[Scope::Feed]).await.unwrap();
    let (_, admin_key) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;

    let page = |since: String| {
        let (server, key) = (&server, feed_key.clone());
        async move {
            let response = server.get(&format!("/v1/changes?limit=2&since={since}"), &key).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let mut seen: Vec<(i64, String, String)> = Vec::new();
    let mut since = String::new();
    let take = |page: &Value, seen: &mut Vec<(i64, String, String)>| {
        for c in page["changes"].as_array().unwrap() {
            seen.push((
                c["run_id"].as_i64().unwrap(),
                c["national_id"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
            ));
        }
        page["changes"].as_array().unwrap().len()
    };
    // A few pages, then the import starts and the paging goes on meanwhile.
    for _ in 0..3 {
        let p = page(since.clone()).await;
        take(&p, &mut seen);
        since = p["next"].as_str().unwrap().to_owned();
    }
    let day3 = tempfile::tempdir().unwrap();
    write_day3(day3.path());
    let importing = {
        let (pool, dir) = (pool.clone(), day3.path().to_owned());
        tokio::spawn(async move {
            let options = day3_options();
            import::import(&pool, dir.to_str().unwrap(), &options).await
        })
    };
    loop {
        let p = page(since.clone()).await;
        let n = take(&p, &mut seen);
        since = p["next"].as_str().unwrap().to_owned();
        if n == 0 && importing.is_finished() {
            break;
        }
    }
    assert_eq!(importing.await.unwrap().unwrap().status, "published");
    // Once more, now that the import is done: nothing it published was skipped.
    let p = page(since.clone()).await;
    take(&p, &mut seen);
    assert_eq!(p["next"], json!(since), "an empty page keeps the cursor");
    assert_eq!(p["changes"], json!([]));

    // The union of the three runs' diffs, read through the diff route.
    let mut expected = Vec::new();
    for run in 1..=3i64 {
        for kind in ["added", "changed", "removed"] {
            let diff: Value = server
                .get(&format!("/v1/imports/{run}/diff?kind={kind}&per_page=500"), &admin_key)
                .await
                .json()
                .await
                .unwrap();
            for item in diff["items"].as_array().unwrap() {
                expected.push((run, item["national_id"].as_str().unwrap().to_owned(), kind.to_owned()));
            }
        }
    }
    expected.sort();
    assert_eq!(seen, expected, "every change once, in (run, national id) order");
    assert!(
        seen.iter()
            .any(|(run, id, change)| *run == 3 && id == REMOVED && change == "added")
    );

    // claims_changed: the diploma-only change of run 3 is not a claims change.
    let all: Value = server
        .get("/v1/changes?limit=10000", &feed_key)
        .await
        .json()
        .await
        .unwrap();
    let flags: Vec<(String, bool)> = all["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["run_id"] == 3 && c["change"] == "changed")
        .map(|c| {
            (
                c["national_id"].as_str().unwrap().to_owned(),
                c["claims_changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![(DIPLOMA_ONLY.to_owned(), false), (CHANGED.to_owned(), true)]
    );

    for (query, status) in [("?limit=10001", 400), ("?limit=0", 400), ("?since=nonsense", 400)] {
        assert_eq!(
            server.get(&format!("/v1/changes{query}"), &feed_key).await.status(),
            status,
            "{query}"
        );
    }
    assert_eq!(
        server.get("/v1/imports", &feed_key).await.status(),
        403,
        "feed is not admin"
    );
    let out = cli(&db.url, &["changes", "--since", &since, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli_page["changes"], json!([]));
    server.stop().await;
}

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

/// A publication is announced to the configured URL: signed, retried after a failure
/// (the receiver fails the first call), every attempt recorded; its cursor is the feed's
/// after that generation.
#[tokio::test]
async fn a_publication_is_announced_signed_and_retried() {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use hmac::{Hmac, KeyInit, Mac};

    type Calls = Arc<Mutex<Vec<(Option<String>, String)>>>;
    let calls: Calls = Arc::default();
    let receiver = {
        let calls = Arc::clone(&calls);
        axum::Router::new().route(
            "/published",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let calls = Arc::clone(&calls);
                async move {
                    let mut calls = calls.lock().unwrap();
                    let signature = headers
                        .get("x-annuaire-signature")
                        .map(|v| v.to_str().unwrap().to_owned());
                    calls.push((signature, body));
                    // The first call fails: the sender must come back.
                    if calls.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/published", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, feed_key) = keys::create(&pool, "downstream", &[Scope::Feed]).await.unwrap();
    let secret = "a shared secret of the test, long enough";
    let config = annuaire::server::ServerConfig {
        webhooks: Some(annuaire::server::webhooks::WebhookSettings::new(
            vec![url.clone()],
            secret.to_owned(),
        )),
        ..annuaire::server::ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config).await;
    // The URL receives what is published once it is registered.
    common::server::wait_for("the webhook's registration", std::time::Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_endpoint")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    let day2 = samples().join("ps-libreacces-day2");
    let run = import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    common::server::wait_for("the retried delivery", std::time::Duration::from_secs(30), || {
        let calls = Arc::clone(&calls);
        async move { calls.lock().unwrap().len() >= 2 }
    })
    .await;

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one failure, one delivery, no more");
    assert_eq!(calls[0].1, calls[1].1, "the same event twice");
    let (signature, body) = &calls[1];
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        signature.as_deref(),
        Some(expected.as_str()),
        "signed with the shared secret"
    );
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["run_id"], json!(run.id.0));
    assert_eq!(
        (&event["added"], &event["changed"], &event["removed"]),
        (&json!(run.added), &json!(run.changed), &json!(run.removed))
    );
    assert_eq!(event["removed_ids"], json!([REMOVED]));
    assert_eq!(event["extract_ts"], "2026-11-26T08:00:00Z");
    let cursor = event["changes_cursor"].as_str().unwrap();
    let after: Value = server
        .get(&format!("/v1/changes?since={cursor}"), &feed_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["changes"],
        json!([]),
        "the cursor is after this generation's changes"
    );

    let attempts: Vec<(i32, Option<i32>)> =
        sqlx::query_as("SELECT attempt, status FROM webhook_attempt WHERE run_id = $1 ORDER BY attempt")
            .bind(run.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, vec![(1, Some(500)), (2, Some(204))]);
    let delivered: bool = sqlx::query_scalar("SELECT delivered_at IS NOT NULL FROM webhook_delivery WHERE run_id = $1")
        .bind(run.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(delivered);
    server.stop().await;
}

/// Retention purges exactly the professionals removed longer ago than the period, with
/// their whole history; the others keep every version. Servers answer 404 for them, and a
/// feed cursor from before the purge is refused (410) rather than continued with a gap.
#[tokio::test]
async fn retention_purges_exactly_the_long_removed() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, claims_key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let (_, feed_key) = keys::create(&pool, "downstream", &[Scope::Feed]).await.unwrap();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let search_dir = tempfile::tempdir().unwrap();
    let config = annuaire::server::ServerConfig {
        search_dir: Some(search_dir.path().to_owned()),
        ..annuaire::server::ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config).await;
    // Whether a search by their id finds REMOVED (`None` while the index is not ready).
    let found = |server: &TestServer| {
        let (client, url, key) = (
            server.client.clone(),
            server.url(&format!("/v1/professionals?q={REMOVED}")),
            search_key.clone(),
        );
        async move {
            let response = client.get(url).bearer_auth(key).send().await.unwrap();
            if response.status() != 200 {
                return None;
            }
            let body: Value = response.json().await.unwrap();
            Some(
                body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["national_id"] == REMOVED),
            )
        }
    };
    let old_cursor: Value = server.get("/v1/changes?limit=1", &feed_key).await.json().await.unwrap();
    let old_cursor = old_cursor["next"].as_str().unwrap().to_owned();
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_status(
            "the removal to be served",
            &format!("/v1/claims/{REMOVED}"),
            &claims_key,
            410,
        )
        .await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    common::server::wait_for(
        "search to find the removed professional",
        std::time::Duration::from_secs(30),
        || {
            let f = found(&server);
            async move { f.await == Some(true) }
        },
    )
    .await;
    let records_before = count("SELECT count(*) FROM professional_record").await;
    let purge = |days: &str| {
        let out = cli(&db.url, &["purge", "--retention-days", days, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    // A removal of today is kept.
    assert_eq!(purge("400")["professionals"], 0);

    // The removal published 500 days ago: past the 400 days.
    sqlx::query("UPDATE import_run SET published_at = published_at - interval '500 days' WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(purge("600")["professionals"], 0, "within 600 days: kept");
    // The 400-day purge as the scheduler runs it: the shipped job, recorded as a job run.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/retention-purge.toml");
    let job = annuaire::jobs::definition::JobDefinition::parse(&shipped, &std::fs::read_to_string(&shipped).unwrap())
        .unwrap();
    let job_run = annuaire::jobs::runner::run(
        &pool,
        &job,
        annuaire::jobs::runner::Trigger::Manual,
        None,
        &annuaire::jobs::runner::RunnerSettings::new(annuaire::download::Downloader::new(Default::default()).unwrap()),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(job_run.status.to_string(), "published", "{job_run:?}");
    assert!(
        job_run
            .message
            .as_deref()
            .unwrap()
            .contains(": 1 professionals removed before"),
        "{job_run:?}"
    );
    let report: (i64, i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT professionals, records, removals, horizon_run_id FROM purge_run ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(report, (1, 1, 1, Some(2)), "recorded in purge_run");
    assert_eq!(
        count("SELECT count(*) FROM professional_record WHERE national_id = '810013908172'").await
            + count("SELECT count(*) FROM run_removal WHERE national_id = '810013908172'").await
            + count("SELECT count(*) FROM professional WHERE national_id = '810013908172'").await,
        0,
        "nothing of the purged professional is left"
    );
    assert_eq!(
        count("SELECT count(*) FROM professional_record").await,
        records_before - 1
    );
    assert_eq!(
        count("SELECT count(*) FROM professional_record WHERE national_id = '810015620395'").await,
        2,
        "a present professional keeps every version"
    );

    server
        .wait_for_status(
            "the purge to be served",
            &format!("/v1/claims/{REMOVED}"),
            &claims_key,
            404,
        )
        .await;
    // The search index drops them too (rebuilt once after the purge).
    common::server::wait_for("the purge to reach search", std::time::Duration::from_secs(30), || {
        let f = found(&server);
        async move { f.await == Some(false) }
    })
    .await;
    assert_eq!(
        cli(&db.url, &["history", REMOVED]).status.code(),
        Some(4),
        "no history left"
    );
    let stale = server.get(&format!("/v1/changes?since={old_cursor}"), &feed_key).await;
    assert_eq!(stale.status(), 410);
    let problem: Value = stale.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("export"), "{problem}");
    let fresh: Value = server
        .get("/v1/changes?limit=10000", &feed_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        fresh["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["national_id"] != REMOVED),
        "from the start, the feed has no trace of the purged"
    );
    assert_eq!(purge("400")["professionals"], 0, "a second purge finds nothing");
    server.stop().await;
}
