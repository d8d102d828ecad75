//! The claims API over real HTTP against a real Postgres: documents, statuses, access
//! control, the IdP hooks, generation switches under load, and serving through an outage.

mod common;

use annuaire::http::{HookSettings, UnknownSubject};
use annuaire::import::{self, ImportOptions};
use annuaire::keys::{self, Scope};
use common::server::TestServer;
use common::{lenient, published_db, samples};
use serde_json::{Value, json};
use sqlx::PgPool;

async fn key(pool: &PgPool, name: &str, scopes: &[Scope]) -> String {
    keys::create(pool, name, scopes).await.expect("key created").1
}

fn expected(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(samples().join("expected").join(file)).unwrap()).unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn claims_documents_and_statuses() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims_key = key(&pool, "idp", &[Scope::Claims]).await;
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;

    for id in ["0012600631", "810018765403", "810007890345", "810003456125"] {
        let response = server.get(&format!("/v1/claims/{id}"), &claims_key).await;
        assert_eq!(response.status(), 200, "{id}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["last-modified"], "Wed, 25 Nov 2026 08:00:00 GMT");
        assert_eq!(json_of(response).await, expected(&format!("{id}.json")), "{id}");
    }
    // Bare RPPS, ETag and If-None-Match.
    let response = server.get("/v1/claims/10003456125", &claims_key).await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let cached = server
        .client
        .get(server.url("/v1/claims/810003456125"))
        .bearer_auth(&claims_key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert!(cached.bytes().await.unwrap().is_empty());

    let malformed = server.get("/v1/claims/12345", &claims_key).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");
    assert_eq!(json_of(malformed).await["status"], 400);
    let unknown = server.get("/v1/claims/810000000000", &claims_key).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.headers()["content-type"], "application/problem+json");

    // Day 2 removes 810013908172: 410 with the date, once the server follows.
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_status("the removal to be served", "/v1/claims/810013908172", &claims_key, 410)
        .await;
    let gone = json_of(server.get("/v1/claims/810013908172", &claims_key).await).await;
    assert_eq!(gone["removed_at"], "2026-11-26T08:00:00+00:00");
    server.stop().await;
}

#[tokio::test]
async fn legacy_52_column_generation_is_served_exactly() {
    let db = published_db("legacy-52").await;
    let pool = db.pool.clone();
    let claims_key = key(&pool, "idp", &[Scope::Claims]).await;
    let server = TestServer::start(pool, HookSettings::default()).await;
    let response = server.get("/v1/claims/810002917580", &claims_key).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await, expected("legacy-52-810002917580.json"));
    server.stop().await;
}

#[tokio::test]
async fn access_control() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims_key = key(&pool, "idp", &[Scope::Claims]).await;
    let search_key = key(&pool, "admin-tool", &[Scope::Search]).await;
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let path = "/v1/claims/810003456125";

    let anonymous = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = server.get(path, "ann_0000").await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = json_of(wrong).await;
    assert_eq!(
        json_of(anonymous).await,
        wrong_body,
        "a guesser learns nothing from the answer"
    );
    assert_eq!(server.get(path, &search_key).await.status(), 403);
    // The key is checked before anything else of the request: no key, no 400 either.
    let malformed = server.client.get(server.url("/v1/claims/12345")).send().await.unwrap();
    assert_eq!(malformed.status(), 401);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");
    let hook = server
        .client
        .post(server.url("/v1/hooks/hydra/token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 401);

    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(
            server.client.get(server.url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
    // Revocation reaches the running server.
    assert_eq!(server.get(path, &claims_key).await.status(), 200);
    keys::revoke(&pool, "idp").await.unwrap();
    server
        .wait_for_status("the revoked key to be refused", path, &claims_key, 401)
        .await;
    server.stop().await;
}

#[tokio::test]
async fn operational_routes_describe_the_service() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims_key = key(&pool, "idp", &[Scope::Claims]).await;
    let server = TestServer::start(pool, HookSettings::default()).await;
    server.get("/v1/claims/810003456125", &claims_key).await;
    let ready = json_of(server.client.get(server.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (
            ready["ready"].as_bool(),
            ready["store"].as_str(),
            ready["professionals"].as_u64()
        ),
        (Some(true), Some("reachable"), Some(17))
    );
    let metrics = server.metrics().await;
    for needle in [
        "annuaire_http_requests_total{route=\"/v1/claims/{id}\",status=\"200\"} 1",
        "annuaire_http_request_duration_seconds_bucket{route=\"/v1/claims/{id}\",le=\"+Inf\"} 1",
        "annuaire_generation_run_id 1",
        "annuaire_generation_age_seconds",
        "annuaire_store_up 1",
        "annuaire_last_import_status{status=\"published\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let openapi = json_of(server.client.get(server.url("/openapi.json")).send().await.unwrap()).await;
    for path in [
        "/v1/claims/{id}",
        "/v1/hooks/hydra/token",
        "/v1/hooks/okta/token",
        "/readyz",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI description"
        );
    }
    assert!(openapi["components"]["securitySchemes"].get("bearer").is_some());
    server.stop().await;
}

fn hydra_request(subject: &str) -> Value {
    json!({
        "session": {
            "id_token": {
                "id_token_claims": {"sub": subject, "acr": "eidas1", "ext": {}},
                "headers": {"extra": {}},
                "username": "",
                "subject": subject
            },
            "extra": {}, "client_id": "app-client", "consent_challenge": "",
            "exclude_not_before_claim": false, "allowed_top_level_claims": []
        },
        "request": {
            "client_id": "app-client", "granted_scopes": ["openid", "scope_all"], "granted_audience": [],
            "grant_types": ["authorization_code"], "payload": {}
        }
    })
}

async fn post(server: &TestServer, path: &str, key: &str, body: &Value) -> reqwest::Response {
    server
        .client
        .post(server.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn hydra_and_okta_hooks_deny_by_default() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let k = key(&pool, "hydra", &[Scope::Claims]).await;
    let server = TestServer::start(pool, HookSettings::default()).await;

    let reply = post(&server, "/v1/hooks/hydra/token", &k, &hydra_request("810018765403")).await;
    assert_eq!(reply.status(), 200);
    let reply = json_of(reply).await;
    assert_eq!(reply["session"]["id_token"], expected("810018765403.json"));
    assert_eq!(
        reply["session"]["access_token"],
        json!({"SubjectNameID": "810018765403", "otherIds": [{"identifiant": "810018765403", "origine": "RPPS", "qualite": 1}]})
    );
    assert_eq!(
        post(&server, "/v1/hooks/hydra/token", &k, &hydra_request("810000000000"))
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&server, "/v1/hooks/hydra/token", &k, &hydra_request("not-an-id"))
            .await
            .status(),
        403
    );

    let okta = json!({"data": {"identity": {"claims": {"sub": "0012600631"}}, "access": {"claims": {}}}});
    let reply = json_of(post(&server, "/v1/hooks/okta/token", &k, &okta).await).await;
    let commands = reply["commands"].as_array().unwrap();
    assert_eq!(commands[0]["type"], "com.okta.identity.patch");
    let ops = commands[0]["value"].as_array().unwrap();
    let document = expected("0012600631.json");
    assert_eq!(ops.len(), document.as_object().unwrap().len());
    let family = ops.iter().find(|op| op["path"] == "/claims/family_name").unwrap();
    assert_eq!(
        (family["op"].as_str(), &family["value"]),
        (Some("add"), &document["family_name"])
    );
    assert_eq!(commands[1]["type"], "com.okta.access.patch");
    let unknown = json!({"data": {"identity": {"claims": {"sub": "810000000000"}}}});
    let reply = json_of(post(&server, "/v1/hooks/okta/token", &k, &unknown).await).await;
    assert!(
        reply["error"]["errorSummary"]
            .as_str()
            .unwrap()
            .contains("not in the directory"),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test]
async fn hooks_fail_open_and_map_federated_subjects_when_configured() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let k = key(&pool, "hydra", &[Scope::Claims]).await;
    let hooks = HookSettings {
        mapping: "federated".parse().unwrap(),
        unknown: UnknownSubject::Allow,
        ..HookSettings::default()
    };
    let server = TestServer::start(pool, hooks).await;
    let reply = post(
        &server,
        "/v1/hooks/hydra/token",
        &k,
        &hydra_request("f:6c1b2e3a-9f0e-4c5a:810003456125"),
    )
    .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        json_of(reply).await["session"]["id_token"],
        expected("810003456125.json")
    );
    assert_eq!(
        post(&server, "/v1/hooks/hydra/token", &k, &hydra_request("f:x:810000000000"))
            .await
            .status(),
        204
    );
    let okta = json!({"data": {"identity": {"claims": {"sub": "f:x:810000000000"}}}});
    assert_eq!(post(&server, "/v1/hooks/okta/token", &k, &okta).await.status(), 204);
    server.stop().await;
}

/// Requests keep succeeding while a new generation is published and swapped in.
#[tokio::test]
async fn switches_generation_under_load_without_failing_a_request() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let k = key(&pool, "idp", &[Scope::Claims]).await;
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, base, k, stop) = (server.client.clone(), server.base.clone(), k.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.is_cancelled() {
                for id in ["810003456125", "810015620395"] {
                    let r = client
                        .get(format!("{base}/v1/claims/{id}"))
                        .bearer_auth(&k)
                        .send()
                        .await;
                    statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                }
            }
            statuses
        }));
    }
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_body(
            "the changed document to be served",
            "/v1/claims/810015620395",
            &k,
            "0148589999",
        )
        .await;
    stop.cancel();
    let mut total = 0;
    for task in load {
        let statuses = task.await.unwrap();
        total += statuses.len();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "a request failed during the switch: {statuses:?}"
        );
    }
    assert!(total > 10, "the load ran ({total} requests)");
    server.stop().await;
}

/// Postgres stops: claims are still served from the snapshot, `/readyz` says the store is
/// unreachable, and the server reconnects by itself when Postgres is back.
#[tokio::test]
async fn serves_claims_while_postgres_is_down() {
    let cluster = common::cluster::PrivateCluster::start("outage").await;
    let store = annuaire::store::Store::connect(&cluster.url).await.unwrap();
    store.migrate().await.unwrap();
    let day1 = samples().join("ps-libreacces");
    import::import(&store.pool, day1.to_str().unwrap(), &ImportOptions::default())
        .await
        .unwrap();
    let k = key(&store.pool, "idp", &[Scope::Claims]).await;
    let server = TestServer::start(store.pool.clone(), HookSettings::default()).await;

    cluster.stop().await;
    let response = server.get("/v1/claims/810003456125", &k).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await, expected("810003456125.json"));
    server
        .wait_for_body(
            "readyz to report the store unreachable",
            "/readyz",
            &k,
            "\"store\":\"unreachable\"",
        )
        .await;
    assert_eq!(
        server.get("/v1/claims/810003456125", &k).await.status(),
        200,
        "still serving"
    );

    cluster.restart().await;
    server
        .wait_for_body(
            "readyz to report the store reachable again",
            "/readyz",
            &k,
            "\"store\":\"reachable\"",
        )
        .await;
    server.stop().await;
    store.pool.close().await;
    cluster.remove().await;
}
