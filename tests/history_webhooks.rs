//! Publication webhooks over published generations (see `common::generations`): signed,
//! retried, every attempt recorded, the cursor the feed's.

mod common;

use serde_json::{Value, json};

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::generations::REMOVED;
use common::server::TestServer;
use common::{lenient, published_db, samples};

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
