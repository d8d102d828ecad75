//! The publication webhooks' sender against real Postgres, a real server and local
//! receivers: each URL has its own queue (a receiver that hangs holds back only its own
//! events), a receiver gets its events in order (a failed one is retried before the next is
//! sent), and a URL's credentials reach the receiver but never a log line or a table.
//! tests/history.rs follows one event from a real publication to a signed delivery.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use sqlx::PgPool;

use annuaire::http::HookSettings;
use annuaire::server::ServerConfig;
use annuaire::server::webhooks::{WebhookSettings, WebhookTiming};
use annuaire::store::webhooks::EndpointKey;
use common::server::{TestServer, wait_for};
use common::serving::Serving;
use common::{lenient, published_db, samples};

const SECRET: &str = "a shared secret of the test, long enough";

/// One call a receiver took.
#[derive(Debug, Clone)]
struct Call {
    /// Path and query.
    target: String,
    authorization: Option<String>,
    body: String,
}

impl Call {
    fn run_id(&self) -> i64 {
        let body: Value = serde_json::from_str(&self.body).expect("a JSON body");
        body["run_id"].as_i64().expect("a run_id")
    }
}

/// Local receivers on one port, by path: `/hang` never answers; `/fail-first` answers its
/// first call 500 and the others 204; any other path answers 204.
#[derive(Default)]
struct Receivers {
    calls: Mutex<Vec<Call>>,
    /// Calls to `/hang` whose caller went away (gave up or was stopped).
    abandoned: AtomicUsize,
}

impl Receivers {
    async fn start() -> (Arc<Receivers>, String) {
        let receivers = Arc::new(Receivers::default());
        let app = axum::Router::new().fallback(receive).with_state(Arc::clone(&receivers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receivers, base)
    }

    /// The calls taken at `path`, in arrival order.
    fn at(&self, path: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.target.split('?').next() == Some(path))
            .cloned()
            .collect()
    }
}

/// Counts a hanging call as abandoned when its handler is dropped: the caller went away.
struct Abandoned(Arc<Receivers>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.abandoned.fetch_add(1, Ordering::SeqCst);
    }
}

async fn receive(State(receivers): State<Arc<Receivers>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let call = Call {
        target: uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_owned(),
        authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let earlier = receivers.at(uri.path()).len();
    receivers.calls.lock().unwrap().push(call);
    match uri.path() {
        "/hang" => {
            let _abandoned = Abandoned(Arc::clone(&receivers));
            std::future::pending::<()>().await;
            StatusCode::NO_CONTENT
        }
        "/fail-first" if earlier == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NO_CONTENT,
    }
}

/// `urls` with short polls and retries; a call may take ten minutes, so that a hanging
/// receiver hangs for the whole test.
fn settings(urls: Vec<String>) -> ServerConfig {
    let mut webhooks = WebhookSettings::new(urls, SECRET.to_owned());
    webhooks.timing = WebhookTiming {
        poll: Duration::from_millis(100),
        timeout: Duration::from_secs(600),
        first_retry: Duration::from_millis(200),
    };
    ServerConfig {
        webhooks: Some(webhooks),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    }
}

async fn wait_for_endpoints(pool: &PgPool, count: i64) {
    wait_for("the webhooks' registration", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_endpoint")
                .fetch_one(&pool)
                .await
                .unwrap()
                == count
        }
    })
    .await;
}

/// `count` publication events written straight into the outbox, in one transaction, each
/// for a run of its own; their run ids in order. The sender is under test here, not the
/// publication that writes them.
async fn write_events(pool: &PgPool, count: usize) -> Vec<i64> {
    let mut tx = pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..count {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO import_run (source, status) VALUES ('webhook test', 'failed') RETURNING id",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO publication_event (run_id, body) VALUES ($1, $2)")
            .bind(id)
            .bind(json!({ "run_id": id }).to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

/// A receiver that hangs (the call neither answers nor fails) does not hold back another:
/// the healthy one gets every event while the first call to the other still hangs.
#[tokio::test]
async fn a_hanging_receiver_holds_back_only_its_own_events() {
    let db = published_db("ps-libreacces").await;
    let (receivers, base) = Receivers::start().await;
    // The hanging URL first, as the old single queue also took it first.
    let urls = vec![format!("http://{base}/hang"), format!("http://{base}/healthy")];
    let server = TestServer::start_with(db.pool.clone(), settings(urls)).await;
    wait_for_endpoints(&db.pool, 2).await;

    let events = write_events(&db.pool, 3).await;
    wait_for("the healthy receiver's events", Duration::from_secs(30), || {
        let receivers = Arc::clone(&receivers);
        let count = events.len();
        async move { receivers.at("/healthy").len() >= count }
    })
    .await;
    let healthy: Vec<i64> = receivers.at("/healthy").iter().map(Call::run_id).collect();
    assert_eq!(healthy, events, "each event once, in order");
    let hanging: Vec<i64> = receivers.at("/hang").iter().map(Call::run_id).collect();
    assert_eq!(hanging, events[..1], "the hanging receiver has the first event only");
    assert_eq!(receivers.abandoned.load(Ordering::SeqCst), 0, "its call still hangs");
    let attempts: Vec<(i64, Option<i32>)> =
        sqlx::query_as("SELECT run_id, status FROM webhook_attempt ORDER BY attempted_at, run_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        attempts,
        events.iter().map(|&id| (id, Some(204))).collect::<Vec<_>>(),
        "the hanging call has no outcome yet"
    );

    // Stopping the server ends the call in flight rather than waiting for its timeout.
    tokio::time::timeout(Duration::from_secs(30), server.stop())
        .await
        .expect("the server stops with a call in flight");
    wait_for("the hanging call to be dropped", Duration::from_secs(10), || {
        let receivers = Arc::clone(&receivers);
        async move { receivers.abandoned.load(Ordering::SeqCst) == 1 }
    })
    .await;
}

/// A receiver gets its events in order: the first event fails, and the events behind it
/// wait for its retry rather than overtaking it.
#[tokio::test]
async fn a_receiver_gets_its_events_in_order() {
    let db = published_db("ps-libreacces").await;
    let (receivers, base) = Receivers::start().await;
    let server = TestServer::start_with(db.pool.clone(), settings(vec![format!("http://{base}/fail-first")])).await;
    wait_for_endpoints(&db.pool, 1).await;

    let events = write_events(&db.pool, 3).await;
    wait_for("every event delivered", Duration::from_secs(30), || {
        let receivers = Arc::clone(&receivers);
        let count = events.len();
        async move { receivers.at("/fail-first").len() > count }
    })
    .await;
    let calls: Vec<i64> = receivers.at("/fail-first").iter().map(Call::run_id).collect();
    assert_eq!(
        calls,
        [events[0], events[0], events[1], events[2]],
        "the failed event again, then the others"
    );
    server.stop().await;
}

/// `annuaire serve` with a URL carrying a password and a token: the receiver gets both (the
/// sender calls the configured URL), and no log line nor any row of the webhook tables
/// holds either; the URL is shown masked, and the store names it by its SHA-256.
#[tokio::test]
async fn a_urls_credentials_reach_the_receiver_and_nothing_else() {
    annuaire::install_crypto_provider();
    let db = published_db("ps-libreacces").await;
    let (receivers, base) = Receivers::start().await;
    let (password, token) = ("pa55-of-the-hook", "t0ken-of-the-hook");
    let url = format!("http://hook:{password}@{base}/fail-first?token={token}");
    let serving = Serving::start(
        &db.url,
        &[],
        &[
            ("ANNUAIRE_PUBLISH_WEBHOOKS", url.as_str()),
            ("ANNUAIRE_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await;
    wait_for_endpoints(&db.pool, 1).await;

    let day2 = samples().join("ps-libreacces-day2");
    let run = annuaire::import::import(&db.pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    // The first call fails (a warning), the retry after 5 s delivers.
    wait_for("the retried delivery", Duration::from_secs(30), || {
        let receivers = Arc::clone(&receivers);
        async move { receivers.at("/fail-first").len() >= 2 }
    })
    .await;
    let logged = serving.stop();

    let calls = receivers.at("/fail-first");
    assert_eq!(calls[1].run_id(), run.id.0);
    assert_eq!(calls[1].target, format!("/fail-first?token={token}"));
    let basic = base64_of(&format!("hook:{password}"));
    assert_eq!(calls[1].authorization, Some(format!("Basic {basic}")));

    let shown = format!("http://hook:***@{base}/fail-first?token=***");
    assert!(
        logged.contains("webhook failed") && logged.contains("webhook delivered") && logged.contains(&shown),
        "{logged}"
    );
    assert!(
        !logged.contains(password) && !logged.contains(token) && !logged.contains(&basic),
        "{logged}"
    );
    for table in ["webhook_endpoint", "webhook_delivery", "webhook_attempt"] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {table} t")))
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table}");
        for row in rows {
            assert!(!row.contains(password) && !row.contains(token), "{table}: {row}");
        }
    }
    let endpoint: (String, String) = sqlx::query_as("SELECT url_sha256, redacted_url FROM webhook_endpoint")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(endpoint, (EndpointKey::of(&url).as_str().to_owned(), shown));
}

/// Migration 0010 on a store that 0007 to 0009 filled with whole URLs: each becomes the
/// SHA-256 the sender computes and the text it shows, and a pending delivery carries on.
#[tokio::test]
async fn the_migration_keys_and_redacts_the_urls_already_stored() {
    let db = common::test_db().await;
    annuaire::store::MIGRATOR.run_to(9, &db.pool).await.unwrap();
    let urls = [
        "https://hook:pa55@receiver.example/in?token=t0ken&mode=full#frag",
        "https://t0ken2@receiver.example/in",
        "http://127.0.0.1:8080/plain",
    ];
    let run: i64 =
        sqlx::query_scalar("INSERT INTO import_run (source, status) VALUES ('webhook test', 'failed') RETURNING id")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    sqlx::query("INSERT INTO publication_event (run_id, body) VALUES ($1, '{}')")
        .bind(run)
        .execute(&db.pool)
        .await
        .unwrap();
    for url in urls {
        sqlx::query("INSERT INTO webhook_endpoint (url) VALUES ($1)")
            .bind(url)
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO webhook_delivery (run_id, url, attempts) VALUES ($1, $2, 1)")
            .bind(run)
            .bind(url)
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO webhook_attempt (run_id, url, attempt, status) VALUES ($1, $2, 1, 500)")
            .bind(run)
            .bind(url)
            .execute(&db.pool)
            .await
            .unwrap();
    }

    annuaire::store::MIGRATOR.run(&db.pool).await.unwrap();

    let mut expected: Vec<(String, String)> = urls
        .iter()
        .map(|u| {
            let shown = annuaire::config::mask_url(u).unwrap();
            (EndpointKey::of(u).as_str().to_owned(), shown)
        })
        .collect();
    expected.sort();
    let endpoints: Vec<(String, String)> =
        sqlx::query_as("SELECT url_sha256, redacted_url FROM webhook_endpoint ORDER BY url_sha256")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(endpoints, expected, "as the sender keys and shows them");
    for table in ["webhook_endpoint", "webhook_delivery", "webhook_attempt"] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {table} t")))
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows.len(), 3, "{table}");
        for row in rows {
            assert!(
                !row.contains("pa55") && !row.contains("t0ken") && !row.contains("frag"),
                "{table}: {row}"
            );
        }
    }
    for url in urls {
        let head = annuaire::store::webhooks::head(&db.pool, &EndpointKey::of(url), 48)
            .await
            .unwrap()
            .expect("the pending delivery carries on");
        assert_eq!((head.run_id.0, head.attempts), (run, 1), "{url}");
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
