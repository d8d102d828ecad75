//! Signed claims for relying parties against a real server and Postgres: `Accept:
//! application/jwt` answers a compact ES256 JWS that PyJWT (another JOSE implementation than
//! the signer's) verifies against `/.well-known/jwks.json`; its payload is the claims
//! document plus `iss`, `sub`, `iat`, `exp` and `generation`. The key is created at start,
//! stored sealed; a rotation publishes the new key at once, signs with it after the delay,
//! and old tokens stay verifiable. Without an issuer: 406, and no JWKS. A key sealed under
//! another secret: a rotation is refused, the key published but never signing,
//! `/readyz` says so without changing its status, and `retire` removes it (not a good one).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use annuaire::http::HookSettings;
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use annuaire::signing::{Sealing, SigningSettings};
use serde_json::Value;

use common::server::{TestServer, wait_for};
use common::{published_db, samples};

const ISSUER: &str = "https://annuaire.test";
const SECRET: &str = "a test secret of more than thirty-two characters";
const ID: &str = "810003456125";

/// Verifies `token` with PyJWT against `jwks`: the payload, or the verifier's error.
fn pyjwt_verify(jwks: &Value, token: &str) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
jwks, token, issuer = json.loads(sys.stdin.read()), sys.argv[1], sys.argv[2]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks["keys"] if k["kid"] == kid)
payload = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["ES256"], issuer=issuer,
                     options={"require": ["exp", "iat", "iss", "sub"]})
print(json.dumps(payload))
"#;
    // Debian's Python, with its python3-jwt and python3-cryptography (.ci/setup).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, token, ISSUER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs (apt-get install python3-jwt python3-cryptography)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jwks.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn jwt(server: &TestServer, path: &str, key: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .bearer_auth(key)
        .header("accept", "application/jwt")
        .send()
        .await
        .unwrap()
}

async fn jwks(server: &TestServer) -> Value {
    let reply = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/jwk-set+json");
    reply.json().await.unwrap()
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signed_claims_verify_with_another_jose_implementation_and_survive_a_rotation() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let config = ServerConfig {
        signing: Some(SigningSettings {
            issuer: ISSUER.to_owned(),
            ttl: Duration::from_secs(300),
            sealing: Sealing::from_secret(SECRET).unwrap(),
        }),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config.clone()).await;

    let plain = server.get(&format!("/v1/claims/{ID}"), &key).await;
    assert_eq!(plain.headers()["vary"], "accept", "negotiated: JSON answers vary too");
    let json_etag = plain.headers()["etag"].to_str().unwrap().to_owned();

    let reply = jwt(&server, &format!("/v1/claims/{ID}"), &key).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/jwt");
    assert_eq!(reply.headers()["vary"], "accept");
    assert_eq!(reply.headers()["cache-control"], "private, no-cache");
    let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.ends_with(".jws\"") && etag != json_etag, "{etag}");
    let token = reply.text().await.unwrap();
    let keys = jwks(&server).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["alg"], "ES256");
    let payload = pyjwt_verify(&keys, &token).expect("PyJWT verifies the token");
    let mut document = payload.clone();
    let object = document.as_object_mut().unwrap();
    for registered in ["iss", "sub", "iat", "exp", "generation"] {
        assert!(object.remove(registered).is_some(), "{registered} in {payload}");
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join(format!("expected/{ID}.json"))).unwrap()).unwrap();
    assert_eq!(
        document, expected,
        "the payload is the claims document plus the registered claims"
    );
    assert_eq!(
        (payload["iss"].as_str(), payload["sub"].as_str()),
        (Some(ISSUER), Some(ID))
    );
    assert_eq!(payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(), 300);
    let generation: i64 = sqlx::query_scalar("SELECT run_id FROM publication")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(payload["generation"], generation);
    // A tampered token does not verify: the signature's first character changed (it holds
    // six whole bits; the last one holds padding bits that decoders may ignore).
    let signature_at = token.rfind('.').unwrap() + 1;
    let first = &token[signature_at..=signature_at];
    let other = if first == "A" { "B" } else { "A" };
    let tampered = format!("{}{other}{}", &token[..signature_at], &token[signature_at + 1..]);
    assert_ne!(tampered, token);
    assert!(pyjwt_verify(&keys, &tampered).is_err());

    // Revalidation with the JWS's own tag; the query form negotiates too.
    let again = server
        .client
        .get(server.url(&format!("/v1/claims/{ID}")))
        .bearer_auth(&key)
        .header("accept", "application/jwt")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let by_query = jwt(&server, &format!("/v1/claims?username={ID}"), &key).await;
    assert_eq!(by_query.status(), 200);
    assert!(pyjwt_verify(&keys, &by_query.text().await.unwrap()).is_ok());
    // The past is served as JSON only; problems stay problems.
    let past = jwt(&server, &format!("/v1/claims/{ID}?at=2030-01-01T00:00:00Z"), &key).await;
    assert_eq!(past.status(), 406);
    assert_eq!(jwt(&server, "/v1/claims/810000000000", &key).await.status(), 404);

    // The key is stored sealed.
    let (sealed, private_key): (bool, Vec<u8>) = sqlx::query_as("SELECT sealed, private_key FROM signing_key")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(sealed && !private_key.is_empty());

    // Rotation: published at once, signing after its delay; old tokens still verify. The
    // delay is an hour, so that "not before its delay" holds however slow the machine; the
    // test then brings the activation to now and starts the server again, as the hour
    // passing would (a running server picks its signer by the time: unit-tested in signing).
    let first = kid_of(&token);
    let out = Command::new(common::cargo_bin())
        .args(["signing-keys", "rotate", "--activate-after", "3600"])
        .env("DATABASE_URL", &db.url)
        .env("ANNUAIRE_SIGNING_KEY_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the new key in the JWKS", Duration::from_secs(10), || async {
        jwks(&server).await["keys"].as_array().unwrap().len() == 2
    })
    .await;
    let before = jwt(&server, &format!("/v1/claims/{ID}"), &key)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(kid_of(&before), first, "the new key does not sign before its delay");
    let delay: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM activates_at - created_at)::float8 FROM signing_key WHERE kid <> $1",
    )
    .bind(&first)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delay, 3600.0, "the new key activates after the delay asked");
    sqlx::query("UPDATE signing_key SET activates_at = now() WHERE kid <> $1")
        .bind(&first)
        .execute(&pool)
        .await
        .unwrap();
    server.stop().await;
    let server = TestServer::start_with(pool.clone(), config).await;
    wait_for("the new key to sign", Duration::from_secs(20), || async {
        let token = jwt(&server, &format!("/v1/claims/{ID}"), &key)
            .await
            .text()
            .await
            .unwrap();
        kid_of(&token) != first
    })
    .await;
    let after = jwt(&server, &format!("/v1/claims/{ID}"), &key)
        .await
        .text()
        .await
        .unwrap();
    let keys = jwks(&server).await;
    assert_eq!(
        keys["keys"].as_array().unwrap().len(),
        2,
        "the old key stays while its tokens live"
    );
    assert!(
        pyjwt_verify(&keys, &token).is_ok(),
        "a token of the old key still verifies"
    );
    assert!(pyjwt_verify(&keys, &after).is_ok());
    let listed = Command::new(common::cargo_bin())
        .args(["signing-keys", "list"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("{first}  superseded")) && listed.contains("signing"),
        "{listed}"
    );
    server.stop().await;

    // Without an issuer: application/jwt is not acceptable, and there is no JWKS.
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let refused = jwt(&server, &format!("/v1/claims/{ID}"), &key).await;
    assert_eq!(refused.status(), 406);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert!(
        server
            .get(&format!("/v1/claims/{ID}"), &key)
            .await
            .headers()
            .get("vary")
            .is_none()
    );
    let missing = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

const OTHER_SECRET: &str = "a mistyped secret, also more than thirty-two characters";

/// `annuaire signing-keys <args>` with `secret` as ANNUAIRE_SIGNING_KEY_SECRET: its exit
/// status and stderr.
fn signing_keys(url: &str, secret: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(common::cargo_bin())
        .arg("signing-keys")
        .args(args)
        .env("DATABASE_URL", url)
        .env("ANNUAIRE_SIGNING_KEY_SECRET", secret)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn stored_kids(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT kid FROM signing_key ORDER BY activates_at, kid")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn readyz(server: &TestServer) -> (u16, Value) {
    let reply = server.client.get(server.url("/readyz")).send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

fn published_kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn a_key_sealed_under_another_secret_is_refused_published_skipped_reported_and_retired() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, api_key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let config = || ServerConfig {
        signing: Some(SigningSettings {
            issuer: ISSUER.to_owned(),
            ttl: Duration::from_secs(300),
            sealing: Sealing::from_secret(SECRET).unwrap(),
        }),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config()).await;
    let good = stored_kids(&pool).await;
    assert_eq!(good.len(), 1, "the first key, made at start");
    let good = good[0].clone();
    assert_eq!(readyz(&server).await.1["signing"], "ready");

    // A rotation with a mistyped secret is refused, naming the key it cannot open, and
    // stores nothing.
    let (ok, stderr) = signing_keys(&db.url, OTHER_SECRET, &["rotate", "--activate-after", "0"]);
    assert!(!ok, "a rotation with a wrong secret is refused");
    assert!(
        stderr.contains(&format!("the secret cannot open signing key {good}")) && stderr.contains("nothing was stored"),
        "{stderr}"
    );
    assert_eq!(stored_kids(&pool).await, vec![good.clone()]);

    // What the unchecked rotation left behind: a signing key under another secret.
    let stranger = annuaire::signing::generate(&Sealing::from_secret(OTHER_SECRET).unwrap()).unwrap();
    annuaire::store::signing_keys::add(&pool, &stranger, Duration::ZERO)
        .await
        .unwrap();
    let bad = stranger.kid.clone();
    let mut both = vec![good.clone(), bad.clone()];
    both.sort();
    wait_for("both keys in the JWKS", Duration::from_secs(10), || async {
        published_kids(&jwks(&server).await) == both
    })
    .await;
    let check_replica = |server: &TestServer| {
        let (api_key, good, bad, both) = (api_key.clone(), good.clone(), bad.clone(), both.clone());
        let (client, base) = (server.client.clone(), server.base.clone());
        async move {
            let server_jwks: Value = client
                .get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(published_kids(&server_jwks), both, "every stored key is published");
            let reply = client
                .get(format!("{base}/v1/claims/{ID}"))
                .bearer_auth(&api_key)
                .header("accept", "application/jwt")
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200, "signed claims still answered");
            let token = reply.text().await.unwrap();
            assert_eq!(kid_of(&token), good, "signed with the newest key that opens");
            assert!(pyjwt_verify(&server_jwks, &token).is_ok());
            let reply = client.get(format!("{base}/readyz")).send().await.unwrap();
            assert_eq!(reply.status(), 200, "plain claims stay in rotation");
            let body: Value = reply.json().await.unwrap();
            let signing = body["signing"].as_str().unwrap().to_owned();
            assert_eq!(
                signing,
                format!("unusable ({bad}: it was not sealed under this ANNUAIRE_SIGNING_KEY_SECRET)")
            );
        }
    };
    check_replica(&server).await;
    // A replica started now, which never held the good key alone, does the same.
    server.stop().await;
    let server = TestServer::start_with(pool.clone(), config()).await;
    check_replica(&server).await;

    // Even the servers' secret cannot rotate while a key it cannot open is stored.
    let (ok, stderr) = signing_keys(&db.url, SECRET, &["rotate"]);
    assert!(
        !ok && stderr.contains(&format!("cannot open signing key {bad}")),
        "{stderr}"
    );
    // The openable signing key is not retired; the one that does not open is.
    let (ok, stderr) = signing_keys(&db.url, SECRET, &["retire", &good]);
    assert!(!ok, "the signing key is not retired");
    assert!(
        stderr.contains(&format!("signing key {good} is signing")) && stderr.contains("only a pending key"),
        "{stderr}"
    );
    // Nor by a mistyped secret, which opens neither key.
    let (ok, stderr) = signing_keys(
        &db.url,
        "yet another secret of thirty-two characters",
        &["retire", &good],
    );
    assert!(
        !ok && stderr.contains("opens none of the stored signing keys"),
        "{stderr}"
    );
    let (ok, stderr) = signing_keys(&db.url, SECRET, &["retire", &bad]);
    assert!(ok, "{stderr}");
    assert_eq!(stored_kids(&pool).await, vec![good.clone()]);
    wait_for("the retired key out of the JWKS", Duration::from_secs(10), || async {
        published_kids(&jwks(&server).await) == vec![good.clone()]
    })
    .await;
    let (status, ready) = readyz(&server).await;
    assert_eq!((status, ready["signing"].as_str()), (200, Some("ready")));

    // A pending key can be retired, whatever its secret.
    let (ok, stderr) = signing_keys(&db.url, SECRET, &["rotate"]);
    assert!(ok, "{stderr}");
    let pending = stored_kids(&pool).await.into_iter().find(|k| *k != good).unwrap();
    let (ok, stderr) = signing_keys(&db.url, SECRET, &["retire", &pending]);
    assert!(ok, "{stderr}");
    assert_eq!(stored_kids(&pool).await, vec![good.clone()]);
    server.stop().await;
}
