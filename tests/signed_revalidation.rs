//! Revalidating a signed claims document against a real server and Postgres: the JWS's
//! entity tag carries its `exp`, so a client revalidating the token it holds gets a 304 while
//! that token is fresh and a new token once it has expired, never a 304 that would keep an
//! expired token in use. The lifetime is set short in code (the command line's floor is 30 s).

mod common;

use std::time::Duration;

use annuaire::http::HookSettings;
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use annuaire::signing::{Sealing, SigningSettings};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::Value;

use common::published_db;
use common::server::{TestServer, wait_for};

const ID: &str = "810003456125";
/// Long enough that a token revalidated at once has more than half of it ahead, whatever
/// the second it was signed in; short enough to wait for its expiry.
const TTL: Duration = Duration::from_secs(4);

/// `GET /v1/claims/{ID}` as a JWS, with `If-None-Match: if_none_match` when given.
async fn signed(server: &TestServer, key: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut request = server
        .client
        .get(server.url(&format!("/v1/claims/{ID}")))
        .bearer_auth(key)
        .header("accept", "application/jwt");
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    request.send().await.unwrap()
}

/// The entity tag and the `exp` of a 200's token.
async fn token(reply: reqwest::Response) -> (String, i64) {
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/jwt");
    let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
    let jws = reply.text().await.unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jws.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(payload["sub"], ID);
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        TTL.as_secs() as i64
    );
    (etag, payload["exp"].as_i64().unwrap())
}

#[tokio::test]
async fn an_expired_token_is_never_revalidated() {
    let db = published_db("ps-libreacces").await;
    let (_, key) = keys::create(&db.pool, "idp", &[Scope::Claims]).await.unwrap();
    let config = ServerConfig {
        signing: Some(SigningSettings {
            issuer: "https://annuaire.test".to_owned(),
            ttl: TTL,
            sealing: Sealing::from_secret("a test secret of more than thirty-two characters").unwrap(),
        }),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(db.pool.clone(), config).await;
    let plain = server.get(&format!("/v1/claims/{ID}"), &key).await;
    let document = plain.headers()["etag"].to_str().unwrap().trim_matches('"').to_owned();

    let (first, exp) = token(signed(&server, &key, None).await).await;

    // Fresh: revalidated, under the tag of the token the client holds.
    let fresh = signed(&server, &key, Some(&first)).await;
    assert_eq!(fresh.status(), 304);
    assert_eq!(fresh.headers()["etag"], first.as_str());

    // Expired: a new token, never a 304.
    wait_for("the first token to expire", Duration::from_secs(10), || async {
        Utc::now().timestamp() >= exp
    })
    .await;
    let (second, renewed) = token(signed(&server, &key, Some(&first)).await).await;
    assert!(renewed > exp, "a new token: exp {renewed} after {exp}");
    for (tag, exp) in [(&first, exp), (&second, renewed)] {
        assert_eq!(
            *tag,
            format!("\"{document}.{exp}.jws\""),
            "the tag carries the token's exp"
        );
    }
    assert_eq!(signed(&server, &key, Some(&second)).await.status(), 304);

    // Tags that say nothing of a token's lifetime revalidate none: `*`, the JSON's own tag,
    // and one that promises more than a lifetime (not ours).
    let forged = format!("\"{document}.{}.jws\"", renewed + 3600);
    for tag in ["*".to_owned(), format!("\"{document}\""), forged] {
        let reply = signed(&server, &key, Some(&tag)).await;
        assert_eq!(reply.status(), 200, "If-None-Match: {tag}");
        token(reply).await;
    }
    server.stop().await;
}
