//! A professional's history a page at a time (`/v1/professionals/{id}/history`), against
//! real Postgres and a real server: `limit` versions oldest first and a cursor to the next
//! page, every version exactly once across pages, a page that ends before its byte budget,
//! bad limits and cursors refused, and the reads of the past's slots shared with `?at=`.
//!
//! Generation 1 is the sample; then each later day changes the telephone of 810015620395,
//! so they have one version per generation.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use annuaire::http::{HookSettings, PastLimits};
use annuaire::import::{self, GateThresholds, ImportOptions};
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use common::server::{TestServer, wait_for};
use common::{published_db, samples};

const CHANGED: &str = "810015620395";
/// Generations after the sample's: CHANGED has one more version than this.
const LATER_DAYS: u32 = 5;

/// Day `day` (1 to 28): the sample's day 2, its telephone of CHANGED made the day's own,
/// under a file timestamp of that day of December.
fn write_day(dir: &Path, day: u32) {
    let day2 = samples().join("ps-libreacces-day2");
    for entry in std::fs::read_dir(&day2).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let text = std::fs::read_to_string(day2.join(&name))
            .unwrap()
            .replace("0148589999", &format!("01485800{day:02}"));
        let name = name.replace("202611260900", &format!("202612{day:02}0900"));
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// The sample, then LATER_DAYS generations each changing CHANGED (and day 1 removing one
/// professional of sixteen: past the default gate).
async fn long_history() -> common::TestDb {
    let db = published_db("ps-libreacces").await;
    let options = ImportOptions {
        gate: GateThresholds {
            max_removed_pct: 50.0,
            max_changed_pct: 50.0,
        },
        ..ImportOptions::default()
    };
    for day in 1..=LATER_DAYS {
        let dir = tempfile::tempdir().unwrap();
        write_day(dir.path(), day);
        let run = import::import(&db.pool, dir.path().to_str().unwrap(), &options)
            .await
            .expect("a later day imports");
        assert_eq!(run.status, "published", "day {day}: {:?}", run.message);
    }
    db
}

async fn search_key(pool: &PgPool) -> String {
    keys::create(pool, "auditor", &[Scope::Search]).await.unwrap().1
}

/// Every page from the first, following `next`: (each page's body, its versions).
async fn all_pages(server: &TestServer, key: &str, limit: u32) -> Vec<(Vec<u8>, Vec<Value>)> {
    let mut pages = Vec::new();
    let mut since = String::new();
    loop {
        let path = format!("/v1/professionals/{CHANGED}/history?limit={limit}&since={since}");
        let response = server.get(&path, key).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.bytes().await.unwrap().to_vec();
        let page: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(page["national_id"], CHANGED);
        pages.push((body, page["versions"].as_array().unwrap().clone()));
        match page.get("next") {
            Some(next) => since = next.as_str().unwrap().to_owned(),
            None => return pages,
        }
        assert!(pages.len() <= 20, "the cursors never end");
    }
}

fn runs(versions: &[Value]) -> Vec<i64> {
    versions.iter().map(|v| v["run_id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn pages_follow_one_another_oldest_first_each_version_once() {
    let db = long_history().await;
    let key = search_key(&db.pool).await;
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    let every: Vec<i64> = (1..=i64::from(LATER_DAYS) + 1).collect();

    let whole: Value = server
        .get(&format!("/v1/professionals/{CHANGED}/history?limit=100"), &key)
        .await
        .json()
        .await
        .unwrap();
    let whole = whole["versions"].as_array().unwrap().clone();
    assert_eq!(runs(&whole), every, "one version per generation, oldest first");

    // The first page: `limit` versions, oldest first, and where the next starts.
    let first: Value = server
        .get(&format!("/v1/professionals/{CHANGED}/history?limit=4"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs(first["versions"].as_array().unwrap()), [1, 2, 3, 4]);
    assert!(first["next"].is_string(), "{first}");
    // Without `limit`: 20 at most, so the whole of this history, and no `next`.
    let default: Value = server
        .get(&format!("/v1/professionals/{CHANGED}/history"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(default["versions"].as_array().unwrap(), &whole);
    assert!(default.get("next").is_none(), "{default}");

    // Following the cursors: every version once, in order, each compared with the version
    // before it even across a page boundary (the same entries as the whole history).
    for limit in [1, 2, 4] {
        let pages = all_pages(&server, &key, limit).await;
        let versions: Vec<Value> = pages.iter().flat_map(|(_, v)| v.clone()).collect();
        assert_eq!(versions, whole, "limit {limit}");
        let (last, full) = pages.split_last().unwrap();
        assert!(full.iter().all(|(_, v)| v.len() == limit as usize), "limit {limit}");
        assert!((1..=limit as usize).contains(&last.1.len()), "limit {limit}");
    }
    let telephone_changes: Vec<usize> = whole[1..]
        .iter()
        .map(|v| v["changes"].as_array().unwrap().len())
        .collect();
    assert!(telephone_changes.iter().all(|n| *n == 1), "{whole:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_limits_and_tampered_cursors_are_refused() {
    let db = long_history().await;
    let key = search_key(&db.pool).await;
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    let history = format!("/v1/professionals/{CHANGED}/history");

    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=twenty", "limit"),
        ("limit=-3", "limit"),
        ("since=zz", "since"),
    ] {
        let response = server.get(&format!("{history}?{query}"), &key).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(named),
            "{query}: {problem}"
        );
    }

    let first: Value = server
        .get(&format!("{history}?limit=2"), &key)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next"].as_str().unwrap();
    let text = String::from_utf8(hex::decode(cursor).unwrap()).unwrap();
    let (run, id) = text.split_once('.').unwrap();
    assert_eq!(id, CHANGED, "the cursor names whose history it is in");
    // Another professional's cursor, a cursor with a digit changed, one cut short.
    let other = hex::encode(format!("{run}.810013908172"));
    let mut flipped = cursor.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '4' { '3' } else { '4' });
    for tampered in [other.as_str(), flipped.as_str(), &cursor[..cursor.len() - 1]] {
        let response = server.get(&format!("{history}?since={tampered}"), &key).await;
        assert_eq!(response.status(), 400, "{tampered}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("since"), "{problem}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_page_ends_before_its_byte_budget() {
    let db = long_history().await;
    let key = search_key(&db.pool).await;
    // A budget of a few versions (each about 300 bytes here); 1 MiB in production.
    let budget = 800;
    let config = ServerConfig {
        past: PastLimits {
            page_bytes: budget,
            ..PastLimits::default()
        },
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(db.pool.clone(), config).await;
    let pages = all_pages(&server, &key, 100).await;
    assert!(pages.len() > 1, "the budget ended the first page early");
    for (body, versions) in &pages {
        assert!(body.len() <= budget, "{} bytes", body.len());
        assert!(!versions.is_empty());
    }
    let versions: Vec<Value> = pages.into_iter().flat_map(|(_, v)| v).collect();
    assert_eq!(runs(&versions), (1..=i64::from(LATER_DAYS) + 1).collect::<Vec<_>>());
    server.stop().await;
}

/// The history reads with the `?at=` reads' slots: with one slot held by a `?at=` read
/// (blocked on a table lock the test holds), a history is a 503 problem at once; once
/// the read ends, it is served again.
#[tokio::test]
async fn the_history_shares_the_slots_of_the_past() {
    let db = long_history().await;
    let key = search_key(&db.pool).await;
    let claims_key = keys::create(&db.pool, "idp", &[Scope::Claims]).await.unwrap().1;
    let config = ServerConfig {
        past: PastLimits {
            reads: 1,
            ..PastLimits::default()
        },
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(db.pool.clone(), config).await;
    let history = format!("/v1/professionals/{CHANGED}/history");
    assert_eq!(server.get(&history, &key).await.status(), 200);

    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE professional_record IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (client, url) = (
        server.client.clone(),
        server.url(&format!("/v1/claims/{CHANGED}?at=2030-01-01T00:00:00Z")),
    );
    let past = tokio::spawn(async move { client.get(url).bearer_auth(claims_key).send().await });
    let pool = db.pool.clone();
    wait_for("the ?at= read to wait on the lock", Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query LIKE '%published_at <= $2%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        }
    })
    .await;

    let refused = server.get(&history, &key).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("retry"), "{problem}");

    lock.rollback().await.unwrap();
    let past = past.await.unwrap().unwrap();
    assert_eq!(past.status(), 200, "the held read ends normally");
    assert_eq!(server.get(&history, &key).await.status(), 200, "the slot is back");
    server.stop().await;
}
