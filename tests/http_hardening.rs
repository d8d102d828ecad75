//! The server under hostile requests, over real HTTP against a real Postgres: absurd paging
//! and huge queries are 400s and the server goes on answering claims; every error is a
//! problem; security headers; idle, trickling and excess connections are bounded.

mod common;

use std::time::Duration;

use annuaire::http::{ConnectionLimits, HookSettings};
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use common::published_db;
use common::server::{TestServer, closed_within, wait_for};
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const CLAIMS_ID: &str = "810003456125";

async fn key(pool: &PgPool, scopes: &[Scope]) -> String {
    let name = format!("{scopes:?}")
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    keys::create(pool, &name, scopes).await.expect("key").1
}

/// Asserts a problem document of `status` whose detail holds `needle`, and no serde text.
async fn assert_problem(response: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(response.status(), status, "{:?}", response.url().path());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let text = response.text().await.unwrap();
    let problem: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(problem["status"], status);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
    for serde in ["line ", "column ", "expected ", "invalid type", "Failed to"] {
        assert!(!detail.contains(serde), "internal text in {detail:?}");
    }
}

async fn search_server(pool: PgPool) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        search_dir: Some(dir.path().to_owned()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    (TestServer::start_with(pool, config).await, dir)
}

#[tokio::test]
async fn search_bounds_and_bad_values_are_400_problems_and_claims_go_on() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let admin = key(&pool, &[Scope::Admin]).await;
    let claims = key(&pool, &[Scope::Claims]).await;
    let (server, _dir) = search_server(pool).await;
    server
        .wait_for_status("the index", "/v1/professionals?q=x", &admin, 200)
        .await;

    // ~20 kB once encoded (a 60 kB URI is refused by the client itself).
    let huge = "bertrand ".repeat(2_000);
    for (query, needle) in [
        ("q=bertrand&page=1000000000".to_owned(), "page × per_page"),
        ("q=bertrand&page=101&per_page=100".to_owned(), "10000"),
        ("per_page=101".to_owned(), "per_page"),
        ("per_page=-1".to_owned(), "per_page"),
        ("page=0".to_owned(), "page"),
        ("page=abc".to_owned(), "page must be a whole number"),
        ("removed=maybe".to_owned(), "removed must be true or false"),
        (format!("q={}", "a ".repeat(40)), "32"),
        (format!("q={}", "x".repeat(1_001)), "1000"),
    ] {
        let response = server.get(&format!("/v1/professionals?{query}"), &admin).await;
        assert_problem(response, 400, needle).await;
    }
    // Past our URI bound already: refused before any search work.
    let response = server.get(&format!("/v1/professionals?q={huge}"), &admin).await;
    assert!(matches!(response.status().as_u16(), 400 | 414), "{}", response.status());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // Unknown parameters are ignored; the window's edge is served.
    let fine = server
        .get("/v1/professionals?q=&page=100&per_page=100&whatever=1", &admin)
        .await;
    assert_eq!(fine.status(), 200);
    let ok = server.get("/v1/professionals?removed=false", &admin).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");

    let response = server.get(&format!("/v1/claims/{CLAIMS_ID}"), &claims).await;
    assert_eq!(response.status(), 200, "the server still answers claims");
    server.stop().await;
}

#[tokio::test]
async fn every_error_is_a_problem_without_internal_text() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let admin = key(&pool, &[Scope::Admin]).await;
    let claims = key(&pool, &[Scope::Claims]).await;
    let server = TestServer::start(pool, HookSettings::default()).await;
    let c = &server.client;

    assert_problem(
        server.get("/v1/imports?limit=x", &admin).await,
        400,
        "limit must be an integer",
    )
    .await;
    assert_problem(server.get("/v1/imports?limit=0", &admin).await, 400, "limit").await;
    let bad_run = c
        .post(server.url("/v1/imports/abc/approve"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(bad_run, 400, "run id must be an integer").await;
    assert_problem(server.get("/v1/claims/%FF%FE", &claims).await, 400, "UTF-8").await;
    assert_problem(server.get("/nowhere", &claims).await, 404, "no such route").await;
    let wrong_method = c.delete(server.url("/healthz")).send().await.unwrap();
    assert!(wrong_method.headers().contains_key("allow"));
    assert_problem(wrong_method, 405, "method").await;

    let hook = server.url("/v1/hooks/hydra/token");
    let post = |body: Vec<u8>, content_type: &'static str| {
        c.post(&hook)
            .bearer_auth(&claims)
            .header("connection", "close")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        post(b"{not json".to_vec(), "application/json").await.unwrap(),
        400,
        "not valid JSON",
    )
    .await;
    assert_problem(
        post(b"{}".to_vec(), "text/plain").await.unwrap(),
        415,
        "application/json",
    )
    .await;
    let big = vec![b' '; 2 << 20];
    assert_problem(post(big, "application/json").await.unwrap(), 413, "larger").await;
    // The server closes a connection whose body it did not read; told so, the client does
    // not pool it (else the next request may race the close and meet a reset).
    let admin_body = c
        .post(server.url("/v1/imports/1/approve"))
        .header("connection", "close")
        .bearer_auth(&admin)
        .body(vec![b'x'; 64 << 10])
        .send()
        .await
        .unwrap();
    assert_problem(admin_body, 413, "larger").await;

    // Our own 414 and 431, as problems (hyper's bare answers only far beyond).
    let long = format!("/v1/claims/{CLAIMS_ID}?{}", "a".repeat(9 << 10));
    assert_problem(server.get(&long, &claims).await, 414, "URI").await;
    let headers = c
        .get(server.url("/healthz"))
        .header("x-padding", "p".repeat(40 << 10))
        .send()
        .await
        .unwrap();
    assert_problem(headers, 431, "headers").await;
    server.stop().await;
}

#[tokio::test]
async fn security_headers_cache_control_and_lower_case_bearer() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims = key(&pool, &[Scope::Claims]).await;
    let admin = key(&pool, &[Scope::Admin]).await;
    let server = TestServer::start(pool, HookSettings::default()).await;
    let c = &server.client;

    let lower = c
        .get(server.url(&format!("/v1/claims/{CLAIMS_ID}")))
        .header("authorization", format!("bearer {claims}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");
    assert_eq!(lower.headers()["cache-control"], "private, no-cache");
    let etag = lower.headers()["etag"].clone();
    let revalidated = c
        .get(server.url(&format!("/v1/claims/{CLAIMS_ID}")))
        .header("authorization", format!("BEARER {claims}"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["cache-control"], "private, no-cache");

    for (path, cache) in [
        (format!("/v1/claims/{CLAIMS_ID}"), "private, no-cache"),
        ("/v1/claims/810000000000".to_owned(), "private, no-cache"),
        ("/v1/imports".to_owned(), "no-store"),
        ("/".to_owned(), "no-store"),
        ("/healthz".to_owned(), "no-store"),
        ("/nowhere".to_owned(), "no-store"),
    ] {
        let key = if path.starts_with("/v1/claims") {
            &claims
        } else {
            &admin
        };
        let response = server.get(&path, key).await;
        let h = response.headers();
        assert_eq!(h["cache-control"], cache, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    let page = server.get("/", &admin).await.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("<style>"),
        "no inline script or style"
    );
    assert!(page.contains(r#"<script src="/page.js">"#));
    let script = server.get("/page.js", &admin).await;
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        script.text().await.unwrap().contains("confirm-"),
        "Approve asks for a confirmation"
    );
    assert_eq!(server.get("/page.css", &admin).await.status(), 200);
    server.stop().await;
}

/// A server with small connection limits, on the real accept loop.
async fn limited_server(pool: PgPool, limits: ConnectionLimits) -> (String, CancellationToken) {
    annuaire::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        connections: limits,
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(annuaire::server::run(pool, listener, config, shutdown.clone()));
    (address, shutdown)
}

#[tokio::test]
async fn idle_trickling_and_excess_connections_are_bounded() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims = key(&pool, &[Scope::Claims]).await;
    let limits = ConnectionLimits {
        max_connections: 3,
        header_read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(800),
        ..ConnectionLimits::default()
    };
    let (address, shutdown) = limited_server(pool, limits).await;
    let url = format!("http://{address}/v1/claims/{CLAIMS_ID}");
    let client = reqwest::Client::new();
    wait_for("claims", Duration::from_secs(30), || {
        let (client, url, claims) = (client.clone(), url.clone(), claims.clone());
        async move {
            client
                .get(&url)
                .bearer_auth(&claims)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;

    // An idle kept-alive connection is closed after the idle timeout.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(20)).await,
        "idle connection left open"
    );

    // A client trickling its headers is cut after the header read timeout.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    let trickle = async {
        for byte in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if slow.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let cut = tokio::time::timeout(Duration::from_secs(20), trickle)
        .await
        .unwrap_or(false);
    assert!(cut, "a trickling client was not cut");

    // Connections past the cap wait; once idle ones are closed, claims are served.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    let fresh = reqwest::Client::new();
    let answered = tokio::time::timeout(Duration::from_secs(20), fresh.get(&url).bearer_auth(&claims).send())
        .await
        .expect("claims answered once the idle connections were closed")
        .unwrap();
    assert_eq!(answered.status(), 200);
    drop(held);
    shutdown.cancel();
}
