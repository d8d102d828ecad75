//! The claims answers pinned byte for byte: every header (name, value, order) and the body
//! of a 200, a 304, a 304 through a list and `*`, a 400, a 404 and a 410, as the server
//! answered before its per-request work was cut down. A faster claims path must answer
//! exactly this; only `date` and `content-length` (which follows the body) are left out.

mod common;

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::server::TestServer;
use common::{lenient, published_db, samples};

/// The headers of an answer as `name: value` lines, in the order sent, without `date`; the
/// request id (made per request) as `<id>`.
fn headers_of(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| match name.as_str() {
            "x-request-id" => format!("{name}: <id>"),
            _ => format!("{name}: {}", value.to_str().unwrap_or("<not ASCII>")),
        })
        .collect()
}

const SECURITY: [&str; 4] = [
    "content-security-policy: default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-frame-options: DENY",
    "x-content-type-options: nosniff",
    "referrer-policy: no-referrer",
];

/// `first`, then the request id (issue 13), then the security headers, then
/// `content-length` when there is a body (hyper adds it last).
fn expected(first: &[&str], content_length: Option<usize>) -> Vec<String> {
    let length = content_length.map(|n| format!("content-length: {n}"));
    first
        .iter()
        .chain(&["x-request-id: <id>"])
        .chain(&SECURITY)
        .map(|h| h.to_string())
        .chain(length)
        .collect()
}

/// The content hash of 810003456125's lines in `ps-libreacces`, as the ETag shows it.
const ETAG: &str = "\"d099d242fe766e1942e6582507255fa2\"";
const LAST_MODIFIED: &str = "Wed, 25 Nov 2026 08:00:00 GMT";

#[tokio::test]
async fn claims_answers_are_exactly_the_same() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let key = keys::create(&pool, "idp", &[Scope::Claims]).await.expect("key").1;
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let get = |path: &str, if_none_match: Option<&str>| {
        let mut request = server.client.get(server.url(path)).bearer_auth(&key);
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        request.send()
    };

    let found = get("/v1/claims/810003456125", None).await.unwrap();
    assert_eq!(found.status(), 200);
    let body = found.bytes().await.unwrap();
    let found = get("/v1/claims/10003456125", None).await.unwrap();
    assert_eq!(
        headers_of(&found),
        expected(
            &[
                "content-type: application/json",
                &format!("etag: {ETAG}"),
                &format!("last-modified: {LAST_MODIFIED}"),
                "cache-control: private, no-cache",
            ],
            Some(body.len())
        )
    );
    assert_eq!(found.bytes().await.unwrap(), body, "a bare RPPS gets the same document");
    let stored = std::fs::read_to_string(samples().join("expected/810003456125.json")).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::from_str::<serde_json::Value>(&stored).unwrap()
    );

    let not_modified = [
        ETAG.to_owned(),
        format!("\"00000000000000000000000000000000\", {ETAG}"),
        format!(" {ETAG} ,\"x\""),
        "*".to_owned(),
    ];
    for tag in &not_modified {
        let cached = get("/v1/claims/810003456125", Some(tag)).await.unwrap();
        assert_eq!(cached.status(), 304, "{tag}");
        assert_eq!(
            headers_of(&cached),
            expected(
                &[
                    &format!("etag: {ETAG}"),
                    &format!("last-modified: {LAST_MODIFIED}"),
                    "cache-control: private, no-cache",
                ],
                None
            ),
            "{tag}"
        );
        assert!(cached.bytes().await.unwrap().is_empty());
    }
    for tag in [
        "\"d099d242fe766e1942e6582507255fa\"",
        "W/\"d099d242fe766e1942e6582507255fa2\"",
        "",
    ] {
        let changed = get("/v1/claims/810003456125", Some(tag)).await.unwrap();
        assert_eq!(changed.status(), 200, "{tag:?} does not match");
    }

    let problem = |length: usize| {
        expected(
            &[
                "content-type: application/problem+json",
                "cache-control: private, no-cache",
            ],
            Some(length),
        )
    };
    let malformed = get("/v1/claims/12345", None).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let headers = headers_of(&malformed);
    let text = malformed.text().await.unwrap();
    assert_eq!(headers, problem(text.len()));
    assert_eq!(
        text,
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"malformed identifier \"12345\": expected a national id (8 + 11-digit RPPS, or 0 + 9-character ADELI), a bare RPPS (11 digits) or a bare ADELI (9 characters)"}"#
    );
    let unknown = get("/v1/claims/810000000000", None).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let headers = headers_of(&unknown);
    let text = unknown.text().await.unwrap();
    assert_eq!(headers, problem(text.len()));
    assert_eq!(
        text,
        r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"810000000000 is not in the directory"}"#
    );

    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_status("the removal to be served", "/v1/claims/810013908172", &key, 410)
        .await;
    let gone = get("/v1/claims/810013908172", None).await.unwrap();
    let headers = headers_of(&gone);
    let text = gone.text().await.unwrap();
    assert_eq!(headers, problem(text.len()));
    assert_eq!(
        text,
        r#"{"type":"about:blank","title":"Gone","status":410,"detail":"810013908172 is no longer in the published directory (removed 2026-11-26)","removed_at":"2026-11-26T08:00:00+00:00"}"#
    );
    server.stop().await;
}
