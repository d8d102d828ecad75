//! Retention over published generations (see `common::generations`): exactly the
//! long-removed purged with their history, 404 for them, and old feed cursors refused (410).

mod common;

use std::path::Path;

use serde_json::Value;

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::generations::REMOVED;
use common::server::TestServer;
use common::{annuaire_cli as cli, lenient, published_db, samples};

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
