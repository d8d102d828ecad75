//! The query form of the claims route for the Keycloak claim mappers, against a real server
//! and Postgres: the identifier under `username`, `id` or `sub` (other parameters ignored),
//! through the query form's subject mapping; the key as a bearer token, `X-API-Key` or the
//! password of HTTP Basic (claims scope only, no Basic challenge); and the setting that
//! answers `200 {}` for an unknown or removed professional.

mod common;

use annuaire::http::{HookSettings, UnknownPlain};
use annuaire::import;
use annuaire::keys::{self, Scope};
use base64::Engine;
use common::server::TestServer;
use common::{lenient, published_db, samples};

const KNOWN: &str = "810003456125";
const REMOVED: &str = "810013908172";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn settings(unknown_plain: UnknownPlain) -> HookSettings {
    HookSettings {
        query_mapping: Some("pattern:^psc-(?P<id>\\d+)$".parse().unwrap()),
        unknown_plain,
        ..HookSettings::default()
    }
}

#[tokio::test]
async fn keycloak_mappers_get_the_same_answers_by_query() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, key) = keys::create(&pool, "keycloak", &[Scope::Claims]).await.unwrap();
    let (_, admin) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    import::import(
        &pool,
        samples().join("ps-libreacces-day2").to_str().unwrap(),
        &lenient(),
    )
    .await
    .unwrap();
    let server = TestServer::start(pool.clone(), settings(UnknownPlain::Problem)).await;
    let by_path = server.get(&format!("/v1/claims/{KNOWN}"), &key).await;
    assert_eq!(by_path.status(), 200);
    let etag = by_path.headers()["etag"].clone();
    let document = by_path.bytes().await.unwrap();

    // Each mapper's request as its source builds it (URL, parameters, headers), with the
    // key as it can send it; the answer is the path form's, byte for byte.
    let uuid = "0b9e7d0c-6a3e-4f4e-9a51-3c1f0e5d2a77";
    let basic_key = basic("keycloak", &key);
    type Request<'a> = (&'a str, String, Vec<(&'a str, &'a str)>);
    let mappers: [Request; 5] = [
        // groupe-sii/keycloak-json-remote-claim: `remote.url` + `username` (as typed at
        // login) + `client_id` (the client's internal UUID), `remote.headers` as given,
        // Content-Type on a GET, no Accept.
        (
            "json-remote-claim",
            format!("username=psc-{KNOWN}&client_id={uuid}"),
            vec![("x-api-key", key.as_str()), ("content-type", "application/json")],
        ),
        // zloom/keycloak-external-claim-mapper: `remoteUrl` with `**uid**` (Keycloak's user
        // id) and `**uname**` substituted, `requestHeaders` as given.
        (
            "external-claim-mapper (zloom)",
            format!("sub={uuid}&username=psc-{KNOWN}"),
            vec![("x-api-key", key.as_str())],
        ),
        // kritikos-io/keycloak-external-claim-mapper: base + path template, api_key mode.
        (
            "external-claim-mapper (kritikos)",
            format!("sub={uuid}&username=psc-{KNOWN}&client_id=account-console"),
            vec![("accept", "application/json"), ("x-api-key", key.as_str())],
        ),
        // JoWe112/keycloak-rest-claim-mapper: url + the query script's string; `apikey`...
        (
            "rest-claim-mapper (apikey)",
            format!("sub={uuid}&username=psc-{KNOWN}"),
            vec![
                ("accept", "application/json"),
                ("content-type", "application/json"),
                ("apollo-require-preflight", "true"),
                ("x-api-key", key.as_str()),
            ],
        ),
        // ...or `basic` (the value already base64 `user:password`), here with a bare RPPS.
        (
            "rest-claim-mapper (basic)",
            "id=10003456125".to_owned(),
            vec![
                ("accept", "application/json"),
                ("content-type", "application/json"),
                ("apollo-require-preflight", "true"),
                ("authorization", basic_key.as_str()),
            ],
        ),
    ];
    for (mapper, query, headers) in &mappers {
        let mut request = server.client.get(server.url(&format!("/v1/claims?{query}")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 200, "{mapper}");
        assert_eq!(reply.headers()["content-type"], "application/json", "{mapper}");
        assert_eq!(reply.headers()["etag"], etag, "{mapper}");
        assert_eq!(reply.headers()["cache-control"], "private, no-cache", "{mapper}");
        assert_eq!(
            reply.bytes().await.unwrap(),
            document,
            "{mapper}: byte for byte the path form's"
        );
    }
    for query in [format!("username={KNOWN}"), format!("sub={KNOWN}&realm=psc")] {
        let reply = server.get(&format!("/v1/claims?{query}"), &key).await;
        assert_eq!(reply.status(), 200, "{query}");
        assert_eq!(reply.bytes().await.unwrap(), document, "{query}: a national id as is");
    }
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join("expected/810003456125.json")).unwrap()).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&document).unwrap(),
        expected
    );

    // The key as X-API-Key, or as Basic's password (the user name is ignored).
    let url = server.url(&format!("/v1/claims?username=psc-{KNOWN}"));
    let with = |name: &'static str, value: String| {
        let (client, url) = (server.client.clone(), url.clone());
        async move { client.get(url).header(name, value).send().await.unwrap() }
    };
    let reply = with("x-api-key", key.clone()).await;
    assert_eq!(
        (reply.status().as_u16(), reply.bytes().await.unwrap()),
        (200, document.clone())
    );
    let reply = with("authorization", basic("keycloak", &key)).await;
    assert_eq!(
        (reply.status().as_u16(), reply.bytes().await.unwrap()),
        (200, document.clone())
    );
    let refused = with("authorization", basic("keycloak", "ann_wrong")).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        challenge
            .as_deref()
            .is_none_or(|c| !c.to_ascii_lowercase().starts_with("basic")),
        "never a Basic challenge: {challenge:?}"
    );
    // Only on claims routes: an admin key as X-API-Key opens nothing else.
    let admin_route = server
        .client
        .get(server.url("/v1/imports"))
        .header("x-api-key", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_route.status(), 401);

    // Problems by default: unknown, removed, no identifier.
    let problem = |query: &'static str, status: u16| {
        let (server, key) = (&server, key.clone());
        async move {
            let reply = server.get(&format!("/v1/claims?{query}"), &key).await;
            assert_eq!(reply.status(), status, "{query}");
            assert_eq!(reply.headers()["content-type"], "application/problem+json", "{query}");
            reply.json::<serde_json::Value>().await.unwrap()
        }
    };
    problem("username=admin", 404).await;
    problem("username=psc-810000000000", 404).await;
    let gone = problem("username=psc-810013908172", 410).await;
    assert!(gone["removed_at"].is_string(), "{gone}");
    problem("client_id=account-console", 400).await;
    server.stop().await;

    // `--unknown-plain empty`: 200 {} for the unknown and the removed, on both forms; a
    // malformed request stays a problem.
    let server = TestServer::start(pool.clone(), settings(UnknownPlain::Empty)).await;
    for path in [
        "/v1/claims?username=admin".to_owned(),
        "/v1/claims?username=psc-810000000000".to_owned(),
        format!("/v1/claims?username=psc-{REMOVED}"),
        "/v1/claims/810000000000".to_owned(),
        format!("/v1/claims/{REMOVED}"),
    ] {
        let reply = server.get(&path, &key).await;
        assert_eq!(reply.status(), 200, "{path}");
        assert_eq!(reply.headers()["content-type"], "application/json", "{path}");
        assert_eq!(reply.headers()["cache-control"], "private, no-cache", "{path}");
        assert_eq!(reply.text().await.unwrap(), "{}", "{path}");
    }
    assert_eq!(server.get("/v1/claims/not-an-id", &key).await.status(), 400);
    assert_eq!(server.get("/v1/claims?realm=psc", &key).await.status(), 400);
    let reply = server.get(&format!("/v1/claims?username=psc-{KNOWN}"), &key).await;
    assert_eq!(reply.bytes().await.unwrap(), document);
    server.stop().await;
}
