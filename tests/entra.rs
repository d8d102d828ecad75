//! The Entra ID custom claims provider against a real server and Postgres, with a local
//! JWKS server standing in for Entra's keys and tokens signed by the test: Microsoft's
//! documented callout body gets exactly Microsoft's documented response shape; only a
//! valid token of Entra's events service passes (expired, wrong audience, wrong issuer,
//! another caller, `alg: none`, HS256 and unknown keys are refused); an unknown `kid` fetches
//! the keys again (so rotated keys work), at most once a minute by default.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use annuaire::http::entra::EntraSettings;
use annuaire::http::{HookSettings, UnknownSubject};
use axum::extract::State;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use common::server::TestServer;
use common::{published_db, samples};

const TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
const AUDIENCE: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";
const EVENTS_SERVICE: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";

fn issuer() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/entra/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn jwk(kid: &str) -> Value {
    serde_json::from_str(&fixture(&format!("{kid}.jwk.json"))).unwrap()
}

/// A local stand-in for Entra's key endpoint: serves the current key set, counts fetches.
struct Keys {
    set: Mutex<Value>,
    fetches: AtomicUsize,
}

async fn serve_keys(keys: Arc<Keys>) -> String {
    async fn handler(State(keys): State<Arc<Keys>>) -> axum::Json<Value> {
        keys.fetches.fetch_add(1, Ordering::SeqCst);
        axum::Json(keys.set.lock().unwrap().clone())
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/discovery/v2.0/keys", axum::routing::get(handler))
        .with_state(keys);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a v2 token Entra's events service gets for our API.
fn entra_claims() -> Value {
    json!({
        "aud": AUDIENCE, "iss": issuer(), "iat": now() - 10, "nbf": now() - 10, "exp": now() + 3600,
        "azp": EVENTS_SERVICE, "azpacr": "2", "oid": "3e5d1c4b-0000-0000-0000-000000000000",
        "sub": "3e5d1c4b-0000-0000-0000-000000000000", "tid": TENANT, "ver": "2.0",
    })
}

fn sign(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(fixture(&format!("{kid}.pem")).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Microsoft's documented callout body (custom-extension-troubleshoot, "Call your REST API
/// directly"; `fixtures/entra/callout.json`), the user's `onPremisesSamAccountName` set to
/// a professional's id.
fn callout(sam_account_name: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture("callout.json")).unwrap();
    body["data"]["authenticationContext"]["user"]["onPremisesSamAccountName"] = json!(sam_account_name);
    body
}

fn settings(jwks_url: &str, refetch_after: Duration, unknown: UnknownSubject) -> HookSettings {
    HookSettings {
        unknown,
        entra: Some(EntraSettings {
            jwks_url: EntraSettings::check_jwks_url(jwks_url).unwrap(),
            issuer: issuer(),
            audiences: vec![AUDIENCE.to_owned()],
            subject_attribute: "onPremisesSamAccountName".to_owned(),
            mapping: None,
            refetch_after,
        }),
        ..HookSettings::default()
    }
}

async fn call(server: &TestServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = server.client.post(server.url("/v1/hooks/entra/token")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// What Microsoft documents as the response, with the claims of `expected/<id>.json` as
/// Entra takes them: strings as they are, `SubjectRole` an array, the rest compact JSON.
fn documented_response(id: &str) -> Value {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join(format!("expected/{id}.json"))).unwrap()).unwrap();
    let mut claims = serde_json::Map::new();
    for (key, value) in document.as_object().unwrap() {
        let value = match key.as_str() {
            "SubjectRefPro" | "otherIds" => Value::String(serde_json::to_string(value).unwrap()),
            _ => value.clone(),
        };
        claims.insert(key.clone(), value);
    }
    json!({"data": {
        "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
        "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": claims}]
    }})
}

/// `token` with its signature's first character changed (it holds six whole bits).
fn tampered(token: &str) -> String {
    let at = token.rfind('.').unwrap() + 1;
    let other = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{other}{}", &token[..at], &token[at + 1..])
}

/// The answer with its JSON-text claims read back: their key order is the document's, and
/// `documented_response` builds them from a parsed document.
fn readable(answer: &Value) -> Value {
    let mut answer = answer.clone();
    for claim in ["SubjectRefPro", "otherIds"] {
        let text = &mut answer["data"]["actions"][0]["claims"][claim];
        let parsed: Value = serde_json::from_str(text.as_str().expect("a JSON text")).unwrap();
        *text = parsed;
    }
    answer
}

#[tokio::test]
async fn entra_gets_its_documented_answer_and_only_its_own_tokens_pass() {
    let db = published_db("ps-libreacces").await;
    let keys = Arc::new(Keys {
        set: Mutex::new(json!({"keys": [jwk("entra-test-a")]})),
        fetches: AtomicUsize::new(0),
    });
    let jwks_url = serve_keys(Arc::clone(&keys)).await;
    // Keys fetched again on every unknown `kid`, to see rotation within the test.
    let server = TestServer::start(
        db.pool.clone(),
        settings(&jwks_url, Duration::ZERO, UnknownSubject::Deny),
    )
    .await;

    let valid = sign("entra-test-a", &entra_claims());
    let reply = call(&server, Some(&valid), &callout("810003456125")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    let body = reply.bytes().await.unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(readable(&answer), readable(&documented_response("810003456125")));
    // The JSON-text claims are compact JSON, in the document's own order.
    let ref_pro = answer["data"]["actions"][0]["claims"]["SubjectRefPro"]
        .as_str()
        .unwrap();
    assert!(
        ref_pro.starts_with(r#"{"codeCivilite":"MME","exercices":[{"codeProfession":"10""#),
        "{ref_pro}"
    );
    let claims = serde_json::to_vec(&answer["data"]["actions"][0]["claims"]).unwrap();
    assert!(claims.len() <= 3 * 1024, "{} bytes of claims", claims.len());
    // A bare RPPS as the account name, and a v1 token (`appid`, no `azp`).
    let mut v1 = entra_claims();
    v1.as_object_mut().unwrap().remove("azp");
    v1["appid"] = json!(EVENTS_SERVICE);
    v1["ver"] = json!("1.0");
    let reply = call(&server, Some(&sign("entra-test-a", &v1)), &callout("10003456125")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        readable(&reply.json::<Value>().await.unwrap()),
        readable(&documented_response("810003456125"))
    );

    // Every other token is a 401 problem.
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = entra_claims();
        change(&mut claims);
        sign("entra-test-a", &claims)
    };
    let none = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "entra-test-a", "typ": "JWT"})),
            b64(&entra_claims())
        )
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("entra-test-a".to_owned());
        // The public key as an HMAC secret: the old algorithm confusion.
        jsonwebtoken::encode(
            &header,
            &entra_claims(),
            &EncodingKey::from_secret(jwk("entra-test-a")["n"].as_str().unwrap().as_bytes()),
        )
        .unwrap()
    };
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        (
            "expired",
            Some(with(&|c| {
                c["exp"] = json!(now() - 600);
                c["iat"] = json!(now() - 4000);
                c["nbf"] = json!(now() - 4000);
            })),
        ),
        ("not yet valid", Some(with(&|c| c["nbf"] = json!(now() + 600)))),
        (
            "wrong audience",
            Some(with(&|c| c["aud"] = json!("api://someone-else"))),
        ),
        (
            "wrong issuer",
            Some(with(&|c| {
                c["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0/"))
            })),
        ),
        (
            "another caller",
            Some(with(&|c| c["azp"] = json!("11111111-2222-3333-4444-555555555555"))),
        ),
        ("alg none", Some(none)),
        ("HS256", Some(hs256)),
        ("unknown key", Some(sign("entra-test-b", &entra_claims()))),
        ("tampered", Some(tampered(&valid))),
    ];
    for (case, token) in &refused {
        let reply = call(&server, token.as_deref(), &callout("810003456125")).await;
        assert_eq!(reply.status(), 401, "{case}");
        assert_eq!(reply.headers()["content-type"], "application/problem+json", "{case}");
    }

    // Rotation: Entra publishes key B beside A, then drops A. An unknown `kid` fetches again.
    let fetched = keys.fetches.load(Ordering::SeqCst);
    *keys.set.lock().unwrap() = json!({"keys": [jwk("entra-test-a"), jwk("entra-test-b")]});
    let rotated = sign("entra-test-b", &entra_claims());
    assert_eq!(
        call(&server, Some(&rotated), &callout("810003456125")).await.status(),
        200
    );
    assert!(
        keys.fetches.load(Ordering::SeqCst) > fetched,
        "an unknown kid fetched the keys again"
    );
    *keys.set.lock().unwrap() = json!({"keys": [jwk("entra-test-b")]});
    // A's key stays cached until a fetch is due; B keeps working.
    assert_eq!(
        call(&server, Some(&rotated), &callout("810003456125")).await.status(),
        200
    );

    // Unknown, removed or unmappable subjects: 403 under deny.
    for subject in ["810000000000", "Casey Jensen"] {
        let reply = call(&server, Some(&rotated), &callout(subject)).await;
        assert_eq!(reply.status(), 403, "{subject}");
    }
    // Not a callout: 400.
    let reply = call(
        &server,
        Some(&rotated),
        &json!({"data": {"@odata.type": "something.else"}}),
    )
    .await;
    assert_eq!(reply.status(), 400);
    server.stop().await;

    // Allow: an empty claims object, in the same shape; unknown kids fetch at most once a
    // minute.
    let server = TestServer::start(
        db.pool.clone(),
        settings(
            &jwks_url,
            annuaire::http::entra::token::REFETCH_AFTER,
            UnknownSubject::Allow,
        ),
    )
    .await;
    let reply = call(&server, Some(&rotated), &callout("810000000000")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<Value>().await.unwrap(),
        json!({"data": {
            "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
            "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": {}}]
        }})
    );
    let before = keys.fetches.load(Ordering::SeqCst);
    for _ in 0..5 {
        let forged = sign("entra-test-a", &entra_claims());
        assert_eq!(
            call(&server, Some(&forged), &callout("810003456125")).await.status(),
            401
        );
    }
    assert!(
        keys.fetches.load(Ordering::SeqCst) <= before + 1,
        "unknown kids fetch the keys at most once a minute"
    );
    server.stop().await;

    // Without its settings the route does not exist.
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    let reply = call(&server, Some(&rotated), &callout("810003456125")).await;
    assert_eq!(reply.status(), 404);
    server.stop().await;
}
