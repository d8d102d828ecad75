//! When a generation counts as published, against real Postgres and a real server: `?at=`
//! answers what was served at an instant, so a generation's `published_at` must not name an
//! instant before anyone could read it. Here the publish transaction is held at its end by
//! another session's lock on the webhook outbox (which its last statements write): while it
//! waits, `?at=` for now answers the generation before, and that answer stands once the
//! publish commits, dated after the lock was released, its webhook event carrying the same
//! `published_at`.

mod common;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::server::{TestServer, wait_for};
use common::{lenient, published_db, samples};

/// Removed by the sample's day 2.
const REMOVED: &str = "810013908172";

fn claims_at(instant: DateTime<Utc>) -> String {
    format!(
        "/v1/claims/{REMOVED}?at={}",
        instant.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

#[tokio::test]
async fn a_generation_is_dated_when_its_publish_commits_not_when_it_began() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let before = server.get(&format!("/v1/claims/{REMOVED}"), &key).await;
    assert_eq!(before.status(), 200);
    let before = before.bytes().await.unwrap();

    // Another session holds the outbox (as a `CREATE INDEX` would), on a connection of its own.
    let mut holder = PgConnection::connect(&db.url).await.unwrap();
    let mut holding = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE publication_event IN SHARE MODE")
        .execute(&mut *holding)
        .await
        .unwrap();
    let publishing = tokio::spawn({
        let pool = pool.clone();
        let day2 = samples().join("ps-libreacces-day2");
        async move { import::import(&pool, day2.to_str().unwrap(), &lenient()).await }
    });
    wait_for("the publish to wait for the outbox", Duration::from_secs(60), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks
                                WHERE relation = 'publication_event'::regclass AND NOT granted
                                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    })
    .await;

    // Meanwhile, the present is the generation before.
    let asked = Utc::now();
    let during = server.get(&claims_at(asked), &key).await;
    assert_eq!(
        during.status(),
        200,
        "{REMOVED} is still served while the publish waits"
    );
    assert_eq!(during.bytes().await.unwrap(), before);

    let released = Utc::now();
    holding.rollback().await.unwrap();
    let run = publishing.await.unwrap().expect("day 2 imports");
    assert_eq!(run.status, "published", "{:?}", run.message);

    let (published_at, dated): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT r.published_at, p.published_at FROM import_run r, publication p WHERE r.id = $1 AND p.run_id = r.id",
    )
    .bind(run.id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        published_at > released && released > asked,
        "published at {published_at}, the outbox released at {released}, asked at {asked}"
    );
    assert_eq!(dated, published_at, "the publication row has the run's date");
    let body: String = sqlx::query_scalar("SELECT body FROM publication_event WHERE run_id = $1")
        .bind(run.id.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    let announced: DateTime<Utc> = event["published_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        announced, published_at,
        "the webhook event carries the same date: {body}"
    );

    // The audit's answer for that instant stands; from the new date, the removal.
    let again = server.get(&claims_at(asked), &key).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), before);
    assert_eq!(server.get(&claims_at(published_at), &key).await.status(), 410);
    server.stop().await;
}
